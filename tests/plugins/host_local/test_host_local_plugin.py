"""host-local through its executable: every verb, results, files, errors."""

from __future__ import annotations

import json
import os

import pytest

from pycni.spec import version

from support.host_local import NET, make_conf, mode, reservations, store_files
from support.outcomes import err, ok_quiet

TWO_SETS = [[{"subnet": "198.18.0.0/24"}], [{"subnet": "fd00::/120"}]]
ROUTES = [
    {"dst": "0.0.0.0/0"},
    {"dst": "fd00:9::/64", "gw": "fd00::fe"},
    {
        "dst": "198.18.9.0/24",
        "gw": "198.18.0.254",
        "mtu": 1400,
        "advmss": 1360,
        "priority": 5,
        "table": 0,
        "scope": 253,
    },
]


@pytest.fixture
def resolv(tmp_path):
    path = tmp_path / "resolv.conf"
    path.write_text(
        "nameserver 198.18.0.53\nnameserver fd00::53\ndomain example.test\n"
        "search a.example.test b.example.test\noptions ndots:2\n"
    )
    return str(path)


# -- ADD / DEL ------------------------------------------------------------------------------


def test_add_del_two_sets_with_dns_and_routes(runner, data_dir, resolv):
    conf = make_conf(data_dir, TWO_SETS, routes=ROUTES, resolvConf=resolv)
    result = ok_quiet(runner.add(conf))
    assert result == {
        "cniVersion": "1.1.0",
        "ips": [
            {"address": "198.18.0.2/24", "gateway": "198.18.0.1"},
            {"address": "fd00::2/120", "gateway": "fd00::1"},
        ],
        "routes": ROUTES,
        "dns": {
            "nameservers": ["198.18.0.53", "fd00::53"],
            "domain": "example.test",
            "search": ["a.example.test", "b.example.test"],
            "options": ["ndots:2"],
        },
    }
    assert store_files(data_dir) == {
        "198.18.0.2": b"ctr1\r\neth0",
        "fd00::2": b"ctr1\r\neth0",
        "last_reserved_ip.0": b"198.18.0.2",
        "last_reserved_ip.1": b"fd00::2",
        "lock": b"",
    }
    net = data_dir / NET
    assert mode(net) == 0o755
    assert mode(net / "198.18.0.2") == mode(net / "fd00::2") == 0o600
    assert mode(net / "last_reserved_ip.0") == 0o600
    assert mode(net / "lock") == 0o750

    second = ok_quiet(runner.add(conf, container_id="ctr2", ifname="net1"))
    assert [i["address"] for i in second["ips"]] == ["198.18.0.3/24", "fd00::3/120"]
    assert store_files(data_dir)["198.18.0.3"] == b"ctr2\r\nnet1"

    assert ok_quiet(runner.delete(conf)) is None
    assert store_files(data_dir) == {
        "198.18.0.3": b"ctr2\r\nnet1",
        "fd00::3": b"ctr2\r\nnet1",
        "last_reserved_ip.0": b"198.18.0.3",
        "last_reserved_ip.1": b"fd00::3",
        "lock": b"",
    }
    ok_quiet(runner.delete(conf))  # DEL twice
    ok_quiet(runner.delete(conf, container_id="never-added"))
    ok_quiet(runner.delete(conf, container_id="ctr2"))  # wrong ifname: nothing released
    assert len(reservations(data_dir)) == 2
    ok_quiet(runner.delete(conf, container_id="ctr2", ifname="net1"))
    assert reservations(data_dir) == {}


def test_same_container_two_interfaces(runner, data_dir):
    conf = make_conf(data_dir)
    ok_quiet(runner.add(conf, ifname="eth0"))
    ok_quiet(runner.add(conf, ifname="eth1"))
    assert reservations(data_dir) == {"198.18.0.2": b"ctr1\r\neth0", "198.18.0.3": b"ctr1\r\neth1"}
    ok_quiet(runner.delete(conf, ifname="eth1"))
    assert reservations(data_dir) == {"198.18.0.2": b"ctr1\r\neth0"}


def test_duplicate_add_is_refused(runner, data_dir):
    conf = make_conf(data_dir)
    ok_quiet(runner.add(conf))
    assert err(runner.add(conf)) == (
        999,
        "failed to allocate for range 0: 198.18.0.2 has been "
        "allocated to ctr1, duplicate allocation is not allowed",
    )
    assert list(reservations(data_dir)) == ["198.18.0.2"]


def test_del_without_store_dir_succeeds_and_creates_nothing(runner, data_dir):
    ok_quiet(runner.delete(make_conf(data_dir)))
    assert not data_dir.exists()


def test_del_works_with_a_config_whose_ranges_went_bad(runner, data_dir):
    ok_quiet(runner.add(make_conf(data_dir)))
    ok_quiet(runner.delete(make_conf(data_dir, [[{"subnet": "198.18.0.5/24"}]])))
    assert reservations(data_dir) == {}


def test_round_robin_across_invocations(runner, data_dir):
    conf = make_conf(data_dir, [[{"subnet": "198.18.0.0/29"}]])
    ok_quiet(runner.add(conf, container_id="a"))
    ok_quiet(runner.add(conf, container_id="b"))
    ok_quiet(runner.delete(conf, container_id="a"))
    out = ok_quiet(runner.add(conf, container_id="c"))
    assert out["ips"][0]["address"] == "198.18.0.4/29"


def test_exhausted_range(runner, data_dir):
    conf = make_conf(data_dir, [[{"subnet": "198.18.0.0/30"}]])
    ok_quiet(runner.add(conf, container_id="a"))
    assert err(runner.add(conf, container_id="b")) == (
        999,
        "failed to allocate for range 0: no IP addresses available in range set: "
        "198.18.0.1-198.18.0.2",
    )


def test_failed_second_set_rolls_back_the_first(runner, data_dir):
    conf = make_conf(data_dir, [[{"subnet": "198.18.0.0/24"}], [{"subnet": "198.18.1.0/30"}]])
    ok_quiet(runner.add(conf, container_id="a"))
    assert err(runner.add(conf, container_id="b"))[1] == (
        "failed to allocate for range 1: no IP addresses available in range set: "
        "198.18.1.1-198.18.1.2"
    )
    assert sorted(reservations(data_dir)) == ["198.18.0.2", "198.18.1.2"]
    # Earlier reservations of the same attachment are not touched by a rollback.
    assert err(runner.add(conf, container_id="a"))[1].startswith(
        "failed to allocate for range 0: 198.18.0.2 has been allocated to a"
    )
    assert sorted(reservations(data_dir)) == ["198.18.0.2", "198.18.1.2"]


# -- requested addresses --------------------------------------------------------------------


def test_requested_ips_from_all_sources(runner, data_dir):
    conf = make_conf(data_dir, TWO_SETS)
    conf["runtimeConfig"] = {"ips": ["fd00::77/120"]}
    out = ok_quiet(runner.add(conf, args="IgnoreUnknown=1;K8S_POD_NAME=p;IP=198.18.0.77"))
    assert [i["address"] for i in out["ips"]] == ["198.18.0.77/24", "fd00::77/120"]
    assert store_files(data_dir)["last_reserved_ip.0"] == b"198.18.0.77"
    conf = make_conf(data_dir, TWO_SETS)
    conf["args"] = {"cni": {"ips": ["198.18.0.88/24"]}}
    out = ok_quiet(runner.add(conf, container_id="ctr2", args="IP=198.18.0.99"))
    assert [i["address"] for i in out["ips"]] == ["198.18.0.88/24", "fd00::78/120"]


def test_requested_ip_errors_and_rollback(runner, data_dir):
    conf = make_conf(data_dir, TWO_SETS)
    ok_quiet(runner.add(conf, args="IP=198.18.0.77"))
    assert err(runner.add(conf, container_id="b", args="IP=198.18.0.77")) == (
        999,
        "failed to allocate for range 0: requested IP address 198.18.0.77 is not available "
        "in range set 198.18.0.1-198.18.0.254",
    )
    assert err(runner.add(conf, container_id="b", args="IP=198.18.0.1")) == (
        999,
        "failed to allocate for range 0: requested ip 198.18.0.1 is subnet's gateway",
    )
    conf["runtimeConfig"] = {"ips": ["198.18.0.80", "198.18.0.81", "198.19.0.1"]}
    assert err(runner.add(conf, container_id="b")) == (
        999,
        "failed to allocate all requested IPs: 198.18.0.81 198.19.0.1",
    )
    assert sorted(reservations(data_dir)) == ["198.18.0.77", "fd00::2"]
    assert err(runner.add(conf, container_id="b", args="IP=nope")) == (
        4,
        'ARGS: error parsing value of pair "IP=nope": invalid IP address nope',
    )


# -- result shapes --------------------------------------------------------------------------


V4_ROUTES = [{"dst": "0.0.0.0/0"}, {"dst": "198.18.9.0/24", "gw": "198.18.0.254", "mtu": 1400}]
V6_ROUTES = [{"dst": "::/0", "gw": "fd00::fe"}]
IPS = [("198.18.0.2/24", "198.18.0.1"), ("fd00::2/120", "fd00::1")]
DNS = {
    "nameservers": ["198.18.0.53", "fd00::53"],
    "domain": "example.test",
    "search": ["a.example.test", "b.example.test"],
    "options": ["ndots:2"],
}


def expected_result(v: str) -> dict:
    if v in ("0.1.0", "0.2.0"):
        return {
            "cniVersion": v,
            "ip4": {
                "ip": IPS[0][0],
                "gateway": IPS[0][1],
                "routes": [
                    {"dst": r["dst"], **({"gw": r["gw"]} if "gw" in r else {})} for r in V4_ROUTES
                ],
            },
            "ip6": {"ip": IPS[1][0], "gateway": IPS[1][1], "routes": V6_ROUTES},
            "dns": DNS,
        }
    if v.startswith("0."):
        return {
            "cniVersion": v,
            "ips": [
                {"version": "4", "address": IPS[0][0], "gateway": IPS[0][1]},
                {"version": "6", "address": IPS[1][0], "gateway": IPS[1][1]},
            ],
            "routes": V4_ROUTES + V6_ROUTES,
            "dns": DNS,
        }
    return {
        "cniVersion": v,
        "ips": [{"address": a, "gateway": g} for a, g in IPS],
        "routes": V4_ROUTES + V6_ROUTES,
        "dns": DNS,
    }


@pytest.mark.parametrize("v", version.ALL)
def test_result_shape_for_every_version(runner, data_dir, resolv, v):
    conf = make_conf(data_dir, TWO_SETS, version=v, routes=V4_ROUTES + V6_ROUTES, resolvConf=resolv)
    out = runner.add(conf)
    assert ok_quiet(out) == expected_result(v)
    assert out.stdout.startswith('{\n    "cniVersion"')  # Go's 4-space indent
    ok_quiet(runner.delete(conf))
    assert reservations(data_dir) == {}


def test_result_without_dns_and_routes(runner, data_dir):
    out = ok_quiet(runner.add(make_conf(data_dir, version="0.4.0")))
    assert out == {
        "cniVersion": "0.4.0",
        "dns": {},
        "ips": [{"version": "4", "address": "198.18.0.2/24", "gateway": "198.18.0.1"}],
    }


# -- legacy files ---------------------------------------------------------------------------


def test_legacy_id_only_files(runner, data_dir):
    conf = make_conf(data_dir, TWO_SETS)
    net = data_dir / NET
    net.mkdir(parents=True)
    (net / "198.18.0.2").write_bytes(b"ctr1")
    (net / "fd00::2").write_bytes(b"ctr1\n")
    (net / "198.18.0.3").write_bytes(b"other")
    # The legacy file counts for duplicate detection, CHECK and DEL.
    assert "198.18.0.2 has been allocated to ctr1" in err(runner.add(conf))[1]
    ok_quiet(runner.check(conf))
    ok_quiet(runner.delete(conf))
    assert reservations(data_dir) == {"198.18.0.3": b"other"}


def test_del_prefers_current_format_over_legacy(runner, data_dir):
    conf = make_conf(data_dir)
    net = data_dir / NET
    net.mkdir(parents=True)
    (net / "198.18.0.9").write_bytes(b"ctr1")
    (net / "198.18.0.2").write_bytes(b"ctr1\r\neth0")
    ok_quiet(runner.delete(conf))
    assert reservations(data_dir) == {"198.18.0.9": b"ctr1"}
    ok_quiet(runner.delete(conf))
    assert reservations(data_dir) == {}


# -- CHECK ----------------------------------------------------------------------------------


def test_check(runner, data_dir):
    conf = make_conf(data_dir, TWO_SETS)
    assert err(runner.check(conf)) == (
        999,
        "host-local: Failed to find address added by container ctr1",
    )
    result = ok_quiet(runner.add(conf))
    ok_quiet(runner.check(conf))
    ok_quiet(runner.check({**conf, "prevResult": result}))
    assert err(runner.check(conf, ifname="eth1"))[1] == (
        "host-local: Failed to find address added by container ctr1"
    )
    os.unlink(data_dir / NET / "fd00::2")
    assert err(runner.check(conf)) == (
        999,
        "host-local: no address of container ctr1 reserved in range set 1 (fd00::1-fd00::ff)",
    )


def test_check_compares_prev_result_addresses(runner, data_dir):
    conf = make_conf(data_dir)
    result = ok_quiet(runner.add(conf))
    result["ips"][0]["address"] = "198.18.0.9/24"
    assert err(runner.check({**conf, "prevResult": result})) == (
        999,
        "host-local: address 198.18.0.9 of prevResult is not reserved for container ctr1",
    )
    result["ips"][0]["address"] = "10.9.9.9/24"  # not ours to judge
    ok_quiet(runner.check({**conf, "prevResult": result}))


def test_check_needs_040(runner, data_dir):
    assert err(runner.check(make_conf(data_dir, version="0.3.1")))[0] == 1


# -- GC -------------------------------------------------------------------------------------


def gc_conf(data_dir, attachments):
    conf = make_conf(data_dir, TWO_SETS)
    if attachments is not None:
        conf["cni.dev/valid-attachments"] = [
            {"containerID": c, "ifname": i} for c, i in attachments
        ]
    return conf


def seed(runner, data_dir):
    conf = make_conf(data_dir, TWO_SETS)
    for cid, ifname in (("a", "eth0"), ("a", "eth1"), ("b", "eth0"), ("c", "eth0")):
        ok_quiet(runner.add(conf, container_id=cid, ifname=ifname))
    net = data_dir / NET
    (net / "198.18.0.100").write_bytes(b"legacy-live")
    (net / "198.18.0.101").write_bytes(b"legacy-dead")
    (net / "198.18.0.102").write_bytes(b"")  # the reference can leave these behind
    (net / "notes.txt").write_bytes(b"not ours")


def test_gc_releases_stale_reservations(runner, data_dir):
    seed(runner, data_dir)
    ok_quiet(runner.gc(gc_conf(data_dir, [("a", "eth0"), ("c", "eth0"), ("legacy-live", "eth0")])))
    assert sorted(reservations(data_dir).items()) == [
        ("198.18.0.100", b"legacy-live"),
        ("198.18.0.2", b"a\r\neth0"),
        ("198.18.0.5", b"c\r\neth0"),
        ("fd00::2", b"a\r\neth0"),
        ("fd00::5", b"c\r\neth0"),
        ("notes.txt", b"not ours"),
    ]
    files = store_files(data_dir)
    assert files["last_reserved_ip.0"] == b"198.18.0.5" and "lock" in files


def test_gc_without_the_key_does_nothing(runner, data_dir):
    seed(runner, data_dir)
    before = store_files(data_dir)
    ok_quiet(runner.gc(gc_conf(data_dir, None)))
    assert store_files(data_dir) == before


def test_gc_with_an_empty_list_releases_everything(runner, data_dir):
    seed(runner, data_dir)
    ok_quiet(runner.gc(gc_conf(data_dir, [])))
    assert reservations(data_dir) == {"notes.txt": b"not ours"}
    conf = make_conf(data_dir, TWO_SETS)
    conf["cni.dev/valid-attachments"] = None  # libcni's nil slice
    ok_quiet(runner.add(conf, container_id="z"))
    ok_quiet(runner.gc(conf))
    assert reservations(data_dir) == {"notes.txt": b"not ours"}


def test_gc_on_a_missing_store_and_version_gate(runner, data_dir):
    ok_quiet(runner.gc(gc_conf(data_dir, [])))
    assert not data_dir.exists()
    conf = gc_conf(data_dir, [])
    conf["cniVersion"] = "1.0.0"
    assert err(runner.gc(conf)) == (1, "config version does not allow GC")


# -- STATUS ---------------------------------------------------------------------------------


def test_status(runner, data_dir):
    conf = make_conf(
        data_dir,
        [[{"subnet": "198.18.0.0/24"}], [{"subnet": "198.18.1.0/30"}, {"subnet": "198.18.2.0/30"}]],
    )
    ok_quiet(runner.status(conf))
    ok_quiet(runner.add(conf, container_id="a"))
    ok_quiet(runner.status(conf))
    ok_quiet(runner.add(conf, container_id="b"))
    assert err(runner.status(conf)) == (
        50,
        "no IP addresses available in range set: 198.18.1.1-198.18.1.2,198.18.2.1-198.18.2.2",
    )
    ok_quiet(runner.delete(conf, container_id="a"))
    ok_quiet(runner.status(conf))


def test_status_counts_only_allocatable_addresses(runner, data_dir):
    conf = make_conf(data_dir, [[{"subnet": "198.18.0.0/30"}]])
    net = data_dir / NET
    net.mkdir(parents=True)
    for name in ("198.18.0.1", "198.18.0.3", "198.18.7.7", "lock"):
        (net / name).write_bytes(b"x")
    ok_quiet(runner.status(conf))
    (net / "198.18.0.2").write_bytes(b"x")
    assert err(runner.status(conf))[0] == 50


def test_status_with_invalid_config(runner, data_dir):
    assert err(runner.status(make_conf(data_dir, [[{"subnet": "198.18.0.0/31"}]]))) == (
        7,
        "invalid range set 0: Network 198.18.0.0/31 too small to allocate from",
    )


# -- invalid input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mutate, expected",
    [
        (lambda c: c.pop("ipam"), (7, "IPAM config missing 'ipam' key")),
        (
            lambda c: c["ipam"].update(
                ranges=[[{"subnet": "198.18.0.0/24", "rangeStart": "198.18.1.300"}]]
            ),
            (
                7,
                "invalid range set 0: ipam.ranges[0][0]: rangeStart 198.18.1.300 is not a valid IP",
            ),
        ),
        (lambda c: c["ipam"].update(ranges=[]), (7, "no IP ranges specified")),
        (
            lambda c: c["ipam"].update(routes=[{"dst": "x"}]),
            (7, "invalid ipam.routes[0]: dst x is not a valid CIDR"),
        ),
        (
            lambda c: (
                c.update(cniVersion="0.2.0")
                or c["ipam"].update(
                    ranges=[[{"subnet": "198.18.0.0/24"}], [{"subnet": "198.18.1.0/24"}]]
                )
            ),
            (7, "CNI version 0.2.0 does not support more than 1 address per family"),
        ),
        (lambda c: c.update(cniVersion="9.9.9"), (1, "incompatible CNI versions")),
        (lambda c: c.update(name="../etc"), (7, "invalid characters found in network name")),
    ],
)
def test_invalid_configs(runner, data_dir, mutate, expected):
    conf = make_conf(data_dir)
    mutate(conf)
    assert err(runner.add(conf)) == expected
    assert not data_dir.exists()


def test_missing_resolv_conf(runner, data_dir, tmp_path):
    conf = make_conf(data_dir, resolvConf=str(tmp_path / "nope"))
    assert err(runner.add(conf)) == (
        5,
        f"failed to read resolvConf {tmp_path / 'nope'}: No such file or directory",
    )


def test_unusable_data_dir(runner, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, msg = err(runner.add(make_conf(blocker)))
    assert code == 5 and msg.startswith(f"failed to create store directory {blocker}/{NET}")


def test_garbage_stdin(runner):
    assert err(runner.add(b"{not json"))[0] == 6


def test_version_and_about(runner):
    assert json.loads(runner.version().stdout) == {
        "cniVersion": "1.1.0",
        "supportedVersions": list(version.ALL),
    }
    out = runner._run("", {})
    assert out.exit_code == 0 and "host-local" in out.stderr


# -- a shared dataDir is hostile (issue 6, item 11) -----------------------------------------


@pytest.mark.parametrize("planted", ["last_reserved_ip.0", ".pycni-reserve.tmp"])
def test_planted_symlinks_are_never_followed_for_writing(runner, data_dir, tmp_path, planted):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    store = data_dir / NET
    store.mkdir(parents=True)
    (store / planted).symlink_to(victim)
    result = ok_quiet(runner.add(make_conf(data_dir)))
    assert result["ips"][0]["address"] == "198.18.0.2/24"
    assert victim.read_text() == "precious\n"
    assert list(reservations(data_dir)) == ["198.18.0.2"]
    if planted.startswith("last_reserved"):
        assert not (store / planted).is_symlink()
        assert (store / planted).read_text() == "198.18.0.2"
    ok_quiet(runner.delete(make_conf(data_dir)))
    assert victim.read_text() == "precious\n"


def test_a_planted_lock_symlink_is_refused(runner, data_dir, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    store = data_dir / NET
    store.mkdir(parents=True)
    (store / "lock").symlink_to(tmp_path / "would-be-created")
    code, msg = err(runner.add(make_conf(data_dir)))
    assert code == 5 and "symbolic link" in msg and "lock" in msg
    assert not (tmp_path / "would-be-created").exists()
    assert [p.name for p in store.iterdir()] == ["lock"]


@pytest.mark.parametrize("data_dir_text", ["relative/store", "./store", "store"])
def test_a_relative_data_dir_is_refused(runner, data_dir_text):
    code, msg = err(runner.add(make_conf(data_dir_text)))
    assert code == 7 and f"invalid ipam.dataDir {data_dir_text!r}" in msg
    assert "absolute path" in msg
