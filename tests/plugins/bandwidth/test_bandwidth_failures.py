"""A failed bandwidth ADD leaves no qdisc and no IFB behind; a killed one is
cleaned by DEL; what was there before is never touched."""

from __future__ import annotations

import io
import json
import subprocess

import pytest

from pycni.kernel import netlink as nlmod
from pycni.kernel.netlink import NetlinkError, RtNetlink
from pycni.plugins.meta.bandwidth import PLUGIN
from pycni.plugins.meta.bandwidth.ifb import ifb_name
from pycni.skel import run

from support.bandwidth import filters, ifbs, link, qdiscs
from support.outcomes import err, ok
from support.sandbox import ip

BOTH = {"ingressRate": 8_000_000, "ingressBurst": 80_000}
BOTH.update(egressRate=16_000_000, egressBurst=160_000)
MUTATIONS = (nlmod.RTM_NEWQDISC, nlmod.RTM_NEWTFILTER, nlmod.RTM_NEWLINK, nlmod.RTM_SETLINK)


def tc_quiet(*args: str) -> None:
    subprocess.run(["tc", *args], capture_output=True)


def clear_qdiscs(dev: str) -> None:
    """What deleting the veth would do to its qdiscs, without deleting it."""
    tc_quiet("qdisc", "del", "dev", dev, "root")
    tc_quiet("qdisc", "del", "dev", dev, "ingress")


def assert_nothing_left(att) -> None:
    assert qdiscs(att.host) == []
    assert filters(att.host) == []
    assert ifbs() == {}


def test_existing_ingress_qdisc_rolls_back_tbf_and_ifb(att):
    """The ingress qdisc comes after the ingress TBF and the IFB: both go."""
    tc_quiet("qdisc", "add", "dev", att.host, "ingress")
    code, msg = err(att.run("ADD", att.conf(**BOTH)))
    assert code == 999 and msg.startswith("create ingress qdisc: add ingress qdisc on")
    assert "File exists" in msg
    assert [q["kind"] for q in qdiscs(att.host)] == ["ingress"]  # the one that was there
    assert ifbs() == {}


def test_existing_ifb_name_rolls_back_tbf_and_keeps_the_link(att):
    name = ifb_name("bwnet", att.container_id)
    ip("link", "add", name, "type", "ifb")
    code, msg = err(att.run("ADD", att.conf(**BOTH)))
    assert code == 999 and msg.startswith(f"adding link: add link {name}: File exists")
    assert qdiscs(att.host) == []
    assert list(ifbs()) == [name] and "ifalias" not in link(name)


def test_second_add_fails_and_keeps_the_first(att):
    conf = att.conf(**BOTH)
    result = ok(att.run("ADD", conf))
    before = (qdiscs(att.host), filters(att.host), sorted(ifbs()))
    assert "File exists" in err(att.run("ADD", conf))[1]
    assert (qdiscs(att.host), filters(att.host), sorted(ifbs())) == before
    ok(att.run("CHECK", {**conf, "prevResult": result}))


def run_in_process(att, conf: dict, command: str = "ADD") -> dict:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": att.container_id,
        "CNI_NETNS": att.ct.path,
        "CNI_IFNAME": att.ifname,
        "CNI_PATH": "/nonexistent",
    }
    out, errout = io.StringIO(), io.StringIO()
    code = run(env, io.BytesIO(json.dumps(conf).encode()), out, errout, PLUGIN)
    doc = json.loads(out.getvalue()) if out.getvalue().strip() else {}
    return {"exit": code, "doc": doc, "stderr": errout.getvalue()}


def mutations_of_a_clean_add(att, monkeypatch) -> list[int]:
    seen: list[int] = []
    real = RtNetlink.request

    def record(self, mtype, *a, **kw):
        if mtype in MUTATIONS:
            seen.append(mtype)
        return real(self, mtype, *a, **kw)

    monkeypatch.setattr(RtNetlink, "request", record)
    assert run_in_process(att, att.conf(**BOTH))["exit"] == 0
    monkeypatch.setattr(RtNetlink, "request", real)
    assert run_in_process(att, att.conf(**BOTH), "DEL")["exit"] == 0
    clear_qdiscs(att.host)
    assert_nothing_left(att)
    return seen


def test_any_failing_step_leaves_nothing(att, monkeypatch):
    """In-process ADDs whose n-th kernel change fails (EPERM), for every n:
    the ADD fails and everything before that step is undone."""
    steps = mutations_of_a_clean_add(att, monkeypatch)
    assert steps == [
        nlmod.RTM_NEWQDISC,  # tbf on the veth
        nlmod.RTM_NEWLINK,  # the IFB
        nlmod.RTM_SETLINK,  # its alias
        nlmod.RTM_NEWQDISC,  # ingress on the veth
        nlmod.RTM_NEWTFILTER,  # the redirect
        nlmod.RTM_NEWQDISC,  # tbf on the IFB
    ]
    real = RtNetlink.request
    for n in range(len(steps)):
        count = [0]

        def failing(self, mtype, payload, op, *a, _n=n, _count=count, **kw):
            if mtype in MUTATIONS:
                if _count[0] == _n:
                    raise NetlinkError(1, op)
                _count[0] += 1
            return real(self, mtype, payload, op, *a, **kw)

        monkeypatch.setattr(RtNetlink, "request", failing)
        outcome = run_in_process(att, att.conf(**BOTH))
        monkeypatch.setattr(RtNetlink, "request", real)
        assert outcome["exit"] == 1, (n, outcome)
        assert "Operation not permitted" in outcome["doc"]["msg"], (n, outcome)
        assert "rollback" not in outcome["stderr"], (n, outcome)  # every undo step worked
        assert_nothing_left(att)


def test_killed_add_is_cleaned_by_del(att, tmp_path):
    """SIGKILL at every fault point of ADD (no rollback runs): the IFB, if
    it was made, is what DEL removes; qdiscs left on the veth go with it."""
    trace = tmp_path / "trace"
    conf = att.conf(**BOTH)
    ok(att.run("ADD", conf, env={"PYCNI_FAULT_TRACE": str(trace)}))
    ok(att.run("DEL", conf, env={"PYCNI_FAULT_TRACE": str(trace)}))
    steps = trace.read_text().split()
    assert steps == [
        "bandwidth.add.ingress-tbf",
        "bandwidth.add.ifb",
        "bandwidth.add.ifb-alias",
        "bandwidth.add.ingress-qdisc",
        "bandwidth.add.redirect-filter",
        "bandwidth.add.egress-tbf",
        "bandwidth.del.ifb",
    ]
    clear_qdiscs(att.host)
    for step in steps[:-1]:
        killed = att.run("ADD", conf, env={"PYCNI_FAULT_STEP": step})
        assert killed.exit_code == -9, (step, killed)
        ok(att.run("DEL", conf))
        assert ifbs() == {}, step
        clear_qdiscs(att.host)
    ok(att.run("ADD", conf))  # and the attachment still works afterwards


@pytest.mark.parametrize("where", ["netns", "veth"])
def test_del_after_the_interface_plugin_cleaned_up(att, where):
    conf = att.conf(**BOTH)
    ok(att.run("ADD", conf))
    if where == "netns":
        att.ct.close()
    else:
        ip("link", "del", att.host)
    ok(att.run("DEL", conf))
    assert ifbs() == {}
