"""macvlan killed (SIGKILL) at every step of ADD, then DEL'd as a runtime
would: nothing of the attachment may stay, except the one window the
reference has too: killed between creating the temporary `veth<hex>` link
and renaming it, that link stays in the container netns until the netns
goes (the kernel deletes it with the netns; DEL cannot know its name)."""

from __future__ import annotations

import signal

from support.cni import reservations
from support.outcomes import ok
from support.sandbox import no_dad
from support.sublink import conf, links, run


def _steps(c, ct, cni_path, trace) -> list[str]:
    ok(run("macvlan", "ADD", c, ct, path=cni_path, env={"PYCNI_FAULT_TRACE": str(trace)}))
    ok(run("macvlan", "DEL", c, ct, path=cni_path))
    return trace.read_text().split()


def test_killed_at_every_add_step_then_del_cleans(
    uplink, netns_factory, data_dir, cni_path, tmp_path
):
    no_dad()  # an ADD need not wait a second for IPv6 DAD
    ct = netns_factory("ct")
    no_dad(ct.name)
    c = conf("macvlan", data_dir, master=uplink, subnets=("198.18.41.0/24", "fd00:18:41::/64"))
    steps = _steps(c, ct, cni_path, tmp_path / "trace")
    assert "macvlan.add.create" in steps and "macvlan.add.rename" in steps
    assert "macvlan.add.notify-sysctls" in steps and "iface.addr-add" in steps
    seen: dict[str, int] = {}
    for step in steps:
        seen[step] = seen.get(step, 0) + 1
        ct = netns_factory("ct")
        no_dad(ct.name)
        out = run(
            "macvlan", "ADD", c, ct, path=cni_path, env={"PYCNI_FAULT_STEP": f"{step}#{seen[step]}"}
        )
        # a step of host-local kills the IPAM process: macvlan's ADD then fails and rolls back
        assert out.exit_code == -signal.SIGKILL or (
            step.startswith("host-local.") and out.exit_code == 1
        ), (step, out)
        ok(run("macvlan", "DEL", c, ct, path=cni_path))
        left = sorted(links(ct.name))
        if step == "macvlan.add.rename":
            assert len(left) == 2 and left[1].startswith("veth"), left
        else:
            assert left == ["lo"], (step, left)
        assert reservations(data_dir, c["name"]) == [], step
        ct.close()
