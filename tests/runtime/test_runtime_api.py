"""CNIConfig end to end with real plugin executables (tests/support/testplugin.py)."""

from __future__ import annotations

import io
import json
import os
import threading
import time

import pytest

from pycni.invoke import PluginTimeoutError, UntypedError
from pycni.runtime import CNIConfig, RuntimeConf, cache
from pycni.runtime.loader import network_conf_from_bytes
from pycni.spec.config import plugin_config_from_bytes
from pycni.spec.errors import CNIError

from support.cni import cache_files, conflist, plugin, read_log


def make_net(name: str, plugins: list[dict], version: str = "1.1.0", **extra):
    return network_conf_from_bytes(json.dumps(conflist(name, plugins, version, **extra)).encode())


def chain(log, version="1.1.0", name="net", test=None, **extra):
    """Three plugins, tags a, b, c, each on its own executable."""
    plugins = [
        plugin("testplugin", "a", log, ip="198.18.0.2/24"),
        plugin(
            "testplugin2",
            "b",
            log,
            ip="198.18.1.2/24",
            capabilities={"portMappings": True, "mac": False},
        ),
        plugin("testplugin3", "c", log, ip="fd00::2/64"),
    ]
    for p in plugins:
        if test and p["tag"] in test:
            p["test"] = test[p["tag"]]
    return make_net(name, plugins, version, **extra)


RT = RuntimeConf(
    "ctr1",
    "/run/netns/ctr1",
    "eth0",
    args=[("K8S_POD_NAME", "p"), ("X", "1")],
    capability_args={
        "portMappings": [{"hostPort": 80, "containerPort": 8080, "protocol": "tcp"}],
        "mac": "c2:00:00:00:00:01",
        "unused": 1,
    },
)


def cmds(log) -> list[tuple[str, str]]:
    return [(e["cmd"], e["tag"]) for e in read_log(log)]


# -- ADD --------------------------------------------------------------------------------


def test_add_chains_results_and_caches(cni, plugin_log, plugin_dir, cni_dirs):
    net = chain(plugin_log)
    result = cni.add_network_list(net, RT)
    log = read_log(plugin_log)
    assert cmds(plugin_log) == [("ADD", "a"), ("ADD", "b"), ("ADD", "c")]
    a, b, c = log
    assert "prevResult" not in a["stdin"]
    assert b["stdin"]["prevResult"]["interfaces"] == [
        {"name": "a-eth0", "sandbox": "/run/netns/ctr1"}
    ]
    assert len(c["stdin"]["prevResult"]["ips"]) == 2
    for entry in log:
        assert entry["stdin"]["name"] == "net"
        assert entry["stdin"]["cniVersion"] == "1.1.0"
        assert entry["env"] == {
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": "ctr1",
            "CNI_NETNS": "/run/netns/ctr1",
            "CNI_IFNAME": "eth0",
            "CNI_ARGS": "K8S_POD_NAME=p;X=1",
            "CNI_PATH": str(plugin_dir),
        }
    # only capabilities the plugin declares true, and that the runtime has
    assert "runtimeConfig" not in a["stdin"]
    assert b["stdin"]["runtimeConfig"] == {"portMappings": RT.capability_args["portMappings"]}
    assert b["stdin"]["capabilities"] == {"portMappings": True, "mac": False}

    assert result.cni_version == "1.1.0"
    assert [i.name for i in result.interfaces] == ["a-eth0", "b-eth0", "c-eth0"]
    assert [ip.address for ip in result.ips] == ["198.18.0.2/24", "198.18.1.2/24", "fd00::2/64"]

    assert cache_files(cni_dirs["cache"]) == ["net-ctr1-eth0"]
    record = json.loads((cni_dirs["cache"] / "results" / "net-ctr1-eth0").read_bytes())
    assert record["kind"] == "cniCacheV1"
    assert record["containerId"] == "ctr1" and record["ifName"] == "eth0"
    assert record["networkName"] == "net" and record["netns"] == "/run/netns/ctr1"
    assert record["cniArgs"] == [["K8S_POD_NAME", "p"], ["X", "1"]]
    assert record["capabilityArgs"] == RT.capability_args
    assert (
        cache.decode((cni_dirs["cache"] / "results" / "net-ctr1-eth0").read_bytes())["config"]
        == net.raw_bytes
    )
    assert record["result"] == result.to_dict()
    assert cni.get_network_list_cached_result(net, RT) == result


def test_add_returns_the_last_plugins_version(cni, plugin_log):
    net = make_net(
        "net",
        [
            plugin("testplugin", "a", plugin_log),
            plugin("testplugin2", "b", plugin_log, test={"add": "ok", "result_version": "0.4.0"}),
        ],
        "1.0.0",
    )
    result = cni.add_network_list(net, RT)
    assert result.cni_version == "0.4.0"
    cached = cni.get_network_list_cached_result(net, RT)
    assert cached.cni_version == "1.0.0"  # converted to the list version when read
    cni.check_network_list(net, RT)
    check = [e for e in read_log(plugin_log) if e["cmd"] == "CHECK"]
    assert all(e["stdin"]["prevResult"]["cniVersion"] == "1.0.0" for e in check)


def test_add_fixes_up_a_result_without_version(cni, plugin_log):
    net = make_net(
        "net", [plugin("testplugin", "a", plugin_log, test={"add": "noversion"})], "0.4.0"
    )
    assert cni.add_network_list(net, RT).cni_version == "0.4.0"
    net = make_net("net2", [plugin("testplugin", "a", plugin_log, test={"add": "null"})], "1.0.0")
    assert cni.add_network_list(net, RT).to_dict() == {"cniVersion": "1.0.0"}


def test_add_failure_stops_the_chain_and_caches_nothing(cni, plugin_log, cni_dirs):
    net = chain(
        plugin_log, test={"b": {"add": "fail", "code": 11, "msg": "busy", "details": "try later"}}
    )
    net.plugins[1].raw["name"] = "second"
    net.plugins[1].name = "second"
    with pytest.raises(CNIError) as err:
        cni.add_network_list(net, RT)
    assert err.value.code == 11
    assert str(err.value) == (
        'plugin type="testplugin2" name="second" failed (add): busy; try later'
    )
    assert (err.value.msg, err.value.details) == (
        'plugin type="testplugin2" name="second" failed (add): busy',
        "try later",
    )
    assert cmds(plugin_log) == [("ADD", "a"), ("ADD", "b")]
    assert cache_files(cni_dirs["cache"]) == []


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (
            "stderr",
            'plugin type="testplugin" failed (add): netplugin failed: '
            '"something bad happened\\n": exit status 1',
        ),
        (
            "garbage",
            'plugin type="testplugin" failed (add): netplugin failed but error parsing its '
            'diagnostic message "this is not json": ',
        ),
        ("garbage-ok", 'plugin type="testplugin" failed (add): failed to unmarshal raw result: '),
    ],
)
def test_add_plugin_output_errors(cni, plugin_log, action, message):
    net = make_net("net", [plugin("testplugin", "a", plugin_log, test={"add": action})])
    with pytest.raises(CNIError) as err:
        cni.add_network_list(net, RT)
    assert str(err.value).startswith(message)


def test_add_validates_names_before_running_anything(cni, plugin_log):
    net = chain(plugin_log)
    cases = [
        (RT.copy(container_id=""), 3, "missing containerID"),
        (RT.copy(container_id="bad/id"), 4, "invalid characters in containerID"),
        (RT.copy(ifname="a-very-long-interface"), 4, "interface name is too long"),
        (RT.copy(ifname="eth 0"), 4, "interface name contains / or : or whitespace characters"),
    ]
    for rt, code, msg in cases:
        with pytest.raises(CNIError) as err:
            cni.add_network_list(net, rt)
        assert err.value.code == code
        assert err.value.msg == f'plugin type="testplugin" failed (add): {msg}'
    assert read_log(plugin_log) == []


def test_add_missing_plugin(cni, plugin_log, plugin_dir):
    net = make_net("net", [plugin("nosuchplugin")])
    with pytest.raises(CNIError) as err:
        cni.add_network_list(net, RT)
    assert str(err.value) == (
        f'plugin type="nosuchplugin" failed (add): failed to find plugin '
        f'"nosuchplugin" in path [{plugin_dir}]'
    )


def test_stderr_of_successful_plugins_goes_to_our_stderr(plugin_dir, cni_dirs, plugin_log):
    sink = io.StringIO()
    cni = CNIConfig([str(plugin_dir)], cache_dir=str(cni_dirs["cache"]), stderr=sink)
    net = make_net("net", [plugin("testplugin", "a", plugin_log, test={"add": "stderr-ok"})])
    cni.add_network_list(net, RT)
    assert sink.getvalue() == "plugin chatter on stderr\n"


# -- DEL ---------------------------------------------------------------------------------


def test_del_runs_in_reverse_with_the_cached_result(cni, plugin_log, cni_dirs):
    net = chain(plugin_log)
    result = cni.add_network_list(net, RT)
    cni.del_network_list(net, RT)
    log = read_log(plugin_log)[3:]
    assert [(e["cmd"], e["tag"]) for e in log] == [("DEL", "c"), ("DEL", "b"), ("DEL", "a")]
    for entry in log:
        assert entry["stdin"]["prevResult"] == result.to_dict("1.1.0")
        assert entry["env"]["CNI_COMMAND"] == "DEL"
        assert entry["env"]["CNI_ARGS"] == "K8S_POD_NAME=p;X=1"
    assert log[1]["stdin"]["runtimeConfig"] == {"portMappings": RT.capability_args["portMappings"]}
    assert cache_files(cni_dirs["cache"]) == []
    assert not (cni_dirs["cache"] / "locks" / "ctr-ctr1.lock").exists()
    # DEL again: no cache, no prevResult, still fine
    cni.del_network_list(net, RT)
    assert all("prevResult" not in e["stdin"] for e in read_log(plugin_log)[6:])


def test_del_before_0_4_0_sends_no_prev_result(cni, plugin_log):
    net = make_net("net", [plugin("testplugin", "a", plugin_log)], "0.3.1")
    cni.add_network_list(net, RT)
    cni.del_network_list(net, RT)
    assert "prevResult" not in read_log(plugin_log)[1]["stdin"]


def test_failed_del_keeps_the_cache(cni, plugin_log, cni_dirs):
    net = chain(plugin_log, test={"b": {"del": "fail", "code": 5, "msg": "io"}})
    cni.add_network_list(net, RT)
    with pytest.raises(CNIError) as err:
        cni.del_network_list(net, RT)
    assert err.value.code == 5
    assert str(err.value) == 'plugin type="testplugin2" failed (delete): io'
    assert cmds(plugin_log)[3:] == [("DEL", "c"), ("DEL", "b")]
    assert cache_files(cni_dirs["cache"]) == ["net-ctr1-eth0"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{truncated",
        b'{"kind":"cniCacheV1","result":{"cniVersion":"7.0.0"}}',
        b'{"cniVersion": "9.9.9"}',
    ],
)
def test_corrupt_cache_on_del_is_tolerated(cni, plugin_log, cni_dirs, content):
    net = chain(plugin_log)
    cni.add_network_list(net, RT)
    (cni_dirs["cache"] / "results" / "net-ctr1-eth0").write_bytes(content)
    cni.del_network_list(net, RT)
    dels = read_log(plugin_log)[3:]
    assert [e["tag"] for e in dels] == ["c", "b", "a"]
    assert all("prevResult" not in e["stdin"] for e in dels)
    assert cache_files(cni_dirs["cache"]) == []


def test_del_needs_no_netns(cni, plugin_log):
    net = chain(plugin_log)
    cni.del_network_list(net, RuntimeConf("ctr9", "", "eth0"))
    assert [e["env"]["CNI_NETNS"] for e in read_log(plugin_log)] == ["", "", ""]


# -- CHECK ---------------------------------------------------------------------------------


def test_check_runs_in_order_with_the_cached_result(cni, plugin_log):
    net = chain(plugin_log)
    result = cni.add_network_list(net, RT)
    cni.check_network_list(net, RT)
    log = read_log(plugin_log)[3:]
    assert [(e["cmd"], e["tag"]) for e in log] == [("CHECK", "a"), ("CHECK", "b"), ("CHECK", "c")]
    assert all(e["stdin"]["prevResult"] == result.to_dict() for e in log)


def test_check_error_is_returned_unwrapped(cni, plugin_log):
    net = chain(plugin_log, test={"b": {"check": "fail", "code": 7, "msg": "not there"}})
    cni.add_network_list(net, RT)
    with pytest.raises(CNIError) as err:
        cni.check_network_list(net, RT)
    assert (err.value.code, str(err.value)) == (7, "not there")
    assert cmds(plugin_log)[3:] == [("CHECK", "a"), ("CHECK", "b")]


def test_check_gates(cni, plugin_log, cni_dirs):
    net = make_net("net", [plugin("testplugin", "a", plugin_log)], "0.3.1")
    with pytest.raises(CNIError) as err:
        cni.check_network_list(net, RT)
    assert str(err.value) == 'configuration version "0.3.1" does not support the CHECK command'
    net = make_net("net", [plugin("testplugin", "a", plugin_log)], "1.0.0", disableCheck=True)
    cni.check_network_list(net, RT)
    assert read_log(plugin_log) == []
    # no cached result: CHECK runs without prevResult (libcni)
    net = make_net("net", [plugin("testplugin", "a", plugin_log)], "1.0.0")
    cni.check_network_list(net, RT)
    assert "prevResult" not in read_log(plugin_log)[0]["stdin"]
    # an unreadable cache is an error for CHECK
    cache.add(str(cni_dirs["cache"]), "net", "ctr1", "eth0", b"{}")
    (cni_dirs["cache"] / "results" / "net-ctr1-eth0").write_bytes(b"")
    with pytest.raises(CNIError, match=r'^failed to get network "net" cached result: '):
        cni.check_network_list(net, RT)


# -- GC -------------------------------------------------------------------------------------


def _add_three(cni, net, other):
    for cid in ("c1", "c2", "c3"):
        cni.add_network_list(
            net,
            RuntimeConf(
                cid, f"/run/netns/{cid}", "eth0", args=[("ID", cid)], capability_args={"mac": cid}
            ),
        )
    cni.add_network_list(other, RuntimeConf("c2", "/run/netns/c2", "eth0"))


def test_gc_deletes_stale_attachments_then_gcs_plugins(cni, plugin_log, cni_dirs):
    net = make_net(
        "net",
        [
            plugin("testplugin", "a", plugin_log, capabilities={"mac": True}),
            plugin("testplugin2", "b", plugin_log),
        ],
    )
    other = make_net("other", [plugin("testplugin", "o", plugin_log)])
    _add_three(cni, net, other)
    plugin_log.unlink()
    cni.gc_network_list(net, [("c1", "eth0"), ("c9", "eth1")])
    log = read_log(plugin_log)
    assert [(e["cmd"], e["tag"], e["env"]["CNI_CONTAINERID"]) for e in log] == [
        ("DEL", "b", "c2"),
        ("DEL", "a", "c2"),
        ("DEL", "b", "c3"),
        ("DEL", "a", "c3"),
        ("GC", "a", ""),
        ("GC", "b", ""),
    ]
    stale = log[1]
    assert stale["env"]["CNI_NETNS"] == "/run/netns/c2"
    assert stale["env"]["CNI_ARGS"] == "ID=c2"
    assert stale["stdin"]["runtimeConfig"] == {"mac": "c2"}
    assert stale["stdin"]["prevResult"]["interfaces"][0]["sandbox"] == "/run/netns/c2"
    valid = [{"containerID": "c1", "ifname": "eth0"}, {"containerID": "c9", "ifname": "eth1"}]
    for gc in log[4:]:
        assert gc["stdin"]["cni.dev/valid-attachments"] == valid
        assert gc["stdin"]["cni.dev/attachments"] == valid
        assert "prevResult" not in gc["stdin"] and "runtimeConfig" not in gc["stdin"]
        assert {k: v for k, v in gc["env"].items() if k != "CNI_PATH"} == {
            "CNI_COMMAND": "GC",
            "CNI_CONTAINERID": "",
            "CNI_NETNS": "",
            "CNI_IFNAME": "",
            "CNI_ARGS": "",
        }
    assert cache_files(cni_dirs["cache"]) == ["net-c1-eth0", "other-c2-eth0"]


def test_gc_without_valid_attachments_deletes_everything(cni, plugin_log, cni_dirs):
    net = make_net("net", [plugin("testplugin", "a", plugin_log)])
    other = make_net("other", [plugin("testplugin", "o", plugin_log)])
    _add_three(cni, net, other)
    plugin_log.unlink()
    cni.gc_network_list(net, None)
    log = read_log(plugin_log)
    assert [(e["cmd"], e["env"]["CNI_CONTAINERID"]) for e in log] == [
        ("DEL", "c1"),
        ("DEL", "c2"),
        ("DEL", "c3"),
        ("GC", ""),
    ]
    assert "cni.dev/valid-attachments" not in log[3]["stdin"]
    assert "cni.dev/attachments" not in log[3]["stdin"]
    assert cache_files(cni_dirs["cache"]) == ["other-c2-eth0"]
    cni.gc_network_list(net, [])
    assert read_log(plugin_log)[-1]["stdin"]["cni.dev/valid-attachments"] == []


def test_gc_before_1_1_0_only_deletes(cni, plugin_log, cni_dirs):
    net = make_net("net", [plugin("testplugin", "a", plugin_log)], "1.0.0")
    cni.add_network_list(net, RuntimeConf("c1", "/x", "eth0"))
    cni.gc_network_list(net, [])
    assert cmds(plugin_log) == [("ADD", "a"), ("DEL", "a")]
    assert cache_files(cni_dirs["cache"]) == []


def test_gc_disabled(cni, plugin_log, cni_dirs):
    net = make_net("net", [plugin("testplugin", "a", plugin_log)], disableGC=True)
    cni.add_network_list(net, RuntimeConf("c1", "/x", "eth0"))
    cni.gc_network_list(net, [])
    assert cmds(plugin_log) == [("ADD", "a")]
    assert cache_files(cni_dirs["cache"]) == ["net-c1-eth0"]


def test_gc_collects_all_errors(cni, plugin_log, cni_dirs):
    net = make_net(
        "net",
        [
            plugin("testplugin", "a", plugin_log, test={"gc": "fail", "code": 7, "msg": "gc a"}),
            plugin(
                "testplugin2",
                "b",
                plugin_log,
                test={"del": "fail", "code": 5, "msg": "del b", "gc": "stderr", "msg2": ""},
            ),
            plugin("nosuchplugin"),
        ],
    )
    results = cni_dirs["cache"] / "results"
    cache.add(
        str(cni_dirs["cache"]), "net", "c1", "eth0", net.raw_bytes, result={"cniVersion": "1.1.0"}
    )
    with pytest.raises(CNIError) as err:
        cni.gc_network_list(net, [])
    lines = str(err.value).split("\n")
    assert lines[0].startswith(
        "failed to delete stale attachment c1 eth0: plugin "
        'type="nosuchplugin" failed (delete): failed to find plugin'
    )
    assert lines[1] == "failed to GC plugin testplugin: gc a"
    assert (
        lines[2] == 'failed to GC plugin testplugin2: netplugin failed: "del b\\n": exit status 1'
    )
    assert lines[3].startswith("failed to GC plugin nosuchplugin: failed to find plugin")
    assert len(err.value.errors) == 4
    assert err.value.errors[1].code == 7
    assert os.listdir(results) == ["net-c1-eth0"]  # the failed DEL keeps its cache


# -- STATUS -----------------------------------------------------------------------------------


def test_status(cni, plugin_log):
    net = make_net(
        "net", [plugin("testplugin", "a", plugin_log), plugin("testplugin2", "b", plugin_log)]
    )
    cni.get_status_network_list(net)
    log = read_log(plugin_log)
    assert [(e["cmd"], e["tag"]) for e in log] == [("STATUS", "a"), ("STATUS", "b")]
    assert log[0]["stdin"] == {
        "type": "testplugin",
        "tag": "a",
        "log": str(plugin_log),
        "name": "net",
        "cniVersion": "1.1.0",
    }
    assert log[0]["env"]["CNI_CONTAINERID"] == log[0]["env"]["CNI_IFNAME"] == ""


@pytest.mark.parametrize("code", [50, 51])
def test_status_error_codes(cni, plugin_log, code):
    net = make_net(
        "net",
        [
            plugin("testplugin", "a", plugin_log),
            plugin(
                "testplugin2",
                "b",
                plugin_log,
                test={"status": "fail", "code": code, "msg": "no IPs left"},
            ),
            plugin("testplugin3", "c", plugin_log),
        ],
    )
    with pytest.raises(CNIError) as err:
        cni.get_status_network_list(net)
    assert (err.value.code, str(err.value)) == (code, "no IPs left")
    assert cmds(plugin_log) == [("STATUS", "a"), ("STATUS", "b")]


def test_status_before_1_1_0_runs_nothing(cni, plugin_log):
    net = make_net(
        "net", [plugin("testplugin", "a", plugin_log, test={"status": "fail", "code": 50})], "1.0.0"
    )
    cni.get_status_network_list(net)
    net = make_net("net", [plugin("nosuchplugin")], "0.4.0")
    cni.get_status_network_list(net)
    assert read_log(plugin_log) == []


# -- timeouts -------------------------------------------------------------------------------


def test_timeout_kills_a_hung_plugin(plugin_dir, cni_dirs, plugin_log, tmp_path):
    cni = CNIConfig([str(plugin_dir)], cache_dir=str(cni_dirs["cache"]), timeout=1)
    pidfile = tmp_path / "pid"
    net = make_net(
        "net",
        [
            plugin("testplugin", "a", plugin_log),
            plugin("testplugin2", "b", plugin_log, test={"add": "hang", "pidfile": str(pidfile)}),
        ],
    )
    start = time.monotonic()
    with pytest.raises(PluginTimeoutError) as err:
        cni.add_network_list(net, RT)
    assert time.monotonic() - start < 5
    assert str(err.value) == (
        'plugin type="testplugin2" failed (add): netplugin timed out after '
        "1s and was killed: signal: terminated"
    )
    with pytest.raises(ProcessLookupError):
        os.kill(int(pidfile.read_text()), 0)
    assert cache_files(cni_dirs["cache"]) == []


# -- single plugin ---------------------------------------------------------------------------


def test_single_plugin_variants(cni, plugin_log, cni_dirs):
    raw = json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "solo",
            "type": "testplugin",
            "tag": "s",
            "log": str(plugin_log),
        }
    ).encode()
    conf = plugin_config_from_bytes(raw)
    result = cni.add_network(conf, RT)
    assert result.cni_version == "1.0.0"
    record = cache.decode((cni_dirs["cache"] / "results" / "solo-ctr1-eth0").read_bytes())
    assert record["config"] == raw
    assert cni.get_network_cached_result(conf, RT) == result
    assert cni.get_network_cached_config(conf, RT)[0] == raw
    cni.check_network(conf, RT)
    cni.del_network(conf, RT)
    log = read_log(plugin_log)
    assert [e["cmd"] for e in log] == ["ADD", "CHECK", "DEL"]
    assert log[2]["stdin"]["prevResult"] == result.to_dict()
    assert cache_files(cni_dirs["cache"]) == []
    old = plugin_config_from_bytes(raw.replace(b"1.0.0", b"0.3.0"))
    with pytest.raises(CNIError, match=r"does not support the CHECK command"):
        cni.check_network(old, RT)


# -- validation and versions -------------------------------------------------------------------


def test_validate_network_list(cni, monkeypatch):
    net = make_net(
        "net",
        [
            plugin("testplugin", capabilities={"portMappings": True, "mac": False}),
            plugin("testplugin2", capabilities={"bandwidth": True, "portMappings": True}),
        ],
    )
    assert cni.validate_network_list(net) == ["bandwidth", "portMappings"]
    monkeypatch.setenv("TESTPLUGIN_VERSIONS", "0.3.1,1.0.0")
    with pytest.raises(UntypedError) as err:
        cni.validate_network_list(net)
    assert str(err.value) == (
        '[plugin testplugin does not support config version "1.1.0" '
        'plugin testplugin2 does not support config version "1.1.0"]'
    )
    net = make_net("net", [plugin("testplugin"), plugin("nosuch")], "1.0.0")
    with pytest.raises(CNIError, match=r'^\[failed to find plugin "nosuch" in path \[.*\]\]$'):
        cni.validate_network_list(net)
    # a single plugin is validated against its own version ("" meaning 0.1.0)
    with pytest.raises(CNIError, match=r'does not support config version "0.1.0"'):
        cni.validate_network(net.plugins[0])
    monkeypatch.delenv("TESTPLUGIN_VERSIONS")
    assert cni.validate_network(net.plugins[0]) == []


def test_get_version_info(cni, monkeypatch):
    assert cni.get_version_info("testplugin")[-1] == "1.1.0"
    monkeypatch.setenv("TESTPLUGIN_NO_VERSION", "1")
    assert cni.get_version_info("testplugin") == ["0.1.0"]
    with pytest.raises(CNIError, match=r"failed to find plugin"):
        cni.get_version_info("nope")


def test_path_as_string_and_default_cache_dir():
    cni = CNIConfig("/a:/b")
    assert cni.path == ["/a", "/b"]
    assert cni._cache_dir(RuntimeConf()) == "/var/lib/cni"
    assert cni._cache_dir(RuntimeConf(cache_dir="/tmp/x")) == "/tmp/x"
    assert CNIConfig([], cache_dir="/c")._cache_dir(RuntimeConf(cache_dir="/tmp/x")) == "/c"


# -- concurrency ----------------------------------------------------------------------------


def test_concurrent_adds_of_different_containers(cni, plugin_log, cni_dirs):
    net = chain(plugin_log)
    errors = []

    def attach(i):
        try:
            rt = RuntimeConf(f"ctr{i}", f"/run/netns/ctr{i}", "eth0", args=[("N", str(i))])
            result = cni.add_network_list(net, rt)
            assert result.interfaces[0].sandbox == f"/run/netns/ctr{i}"
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=attach, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert cache_files(cni_dirs["cache"]) == sorted(f"net-ctr{i}-eth0" for i in range(8))
    for att in cni.get_cached_attachments():
        i = att.container_id[3:]
        assert att.netns == f"/run/netns/ctr{i}"
        assert att.cni_args == [("N", i)]
        result = cni.get_network_list_cached_result(net, RuntimeConf(att.container_id, "", "eth0"))
        assert {iface.sandbox for iface in result.interfaces} == {f"/run/netns/ctr{i}"}
    threads = [
        threading.Thread(
            target=cni.del_network_list, args=(net, RuntimeConf(f"ctr{i}", "", "eth0"))
        )
        for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache_files(cni_dirs["cache"]) == []


def _wait_for(path, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def _held_net(plugin_log, tmp_path):
    """A network whose plugin writes `started` and then waits for `go` to exist."""
    go = tmp_path / "go"
    started = tmp_path / "pid"
    test = {"pidfile": str(started), "wait_for": str(go)}
    return make_net("net", [plugin("testplugin", "a", plugin_log, test=test)]), started, go


@pytest.mark.parametrize(
    ("first", "second", "valid"),
    [
        pytest.param("GC", "ADD", [], id="gc-excludes-add"),
        # a GC after the ADD keeps its attachment, so the log holds no DEL
        pytest.param("ADD", "GC", [("c1", "eth0")], id="add-delays-gc"),
    ],
)
def test_gc_and_add_exclude_each_other(cni, plugin_log, tmp_path, first, second, valid):
    """An operation that arrives while the other runs waits for it to finish."""
    net, started, go = _held_net(plugin_log, tmp_path)
    threads = {
        "GC": threading.Thread(target=cni.gc_network_list, args=(net, valid)),
        "ADD": threading.Thread(
            target=cni.add_network_list, args=(net, RuntimeConf("c1", "/x", "eth0"))
        ),
    }
    threads[first].start()
    try:
        _wait_for(started)  # the first operation's plugin runs and holds its lock
        threads[second].start()
        time.sleep(0.5)
        assert cmds(plugin_log) == []  # neither has finished, the second has not even started
        go.write_text("")
        threads[first].join(10)
        threads[second].join(10)
    finally:
        go.write_text("")
        threads[first].join()
    log = read_log(plugin_log)
    assert [e["cmd"] for e in log] == [first, second]
    assert log[1]["t0"] >= log[0]["t1"]


def test_operations_on_one_container_are_serialized(cni, plugin_log, tmp_path):
    net, started, go = _held_net(plugin_log, tmp_path)
    first = threading.Thread(
        target=cni.add_network_list, args=(net, RuntimeConf("c1", "/x", "eth0"))
    )
    first.start()
    try:
        _wait_for(started)
        second = threading.Thread(
            target=cni.add_network_list, args=(net, RuntimeConf("c1", "/x", "eth1"))
        )
        other = threading.Thread(
            target=cni.del_network_list,
            args=(
                make_net("n2", [plugin("testplugin2", "o", plugin_log)]),
                RuntimeConf("c2", "/y", "eth0"),
            ),
        )
        second.start()
        other.start()
        other.join(10)  # another container is not held up
        assert cmds(plugin_log) == [("DEL", "o")]
        time.sleep(0.3)
        assert cmds(plugin_log) == [("DEL", "o")]
        go.write_text("")
        first.join(10)
        second.join(10)
    finally:
        go.write_text("")
        first.join()
    log = read_log(plugin_log)
    assert [(e["cmd"], e["env"]["CNI_IFNAME"]) for e in log] == [
        ("DEL", "eth0"),
        ("ADD", "eth0"),
        ("ADD", "eth1"),
    ]
    assert log[2]["t0"] >= log[1]["t1"]


def test_locking_can_be_disabled(plugin_dir, cni_dirs, plugin_log):
    cni = CNIConfig([str(plugin_dir)], cache_dir=str(cni_dirs["cache"]), locking=False)
    net = make_net("net", [plugin("testplugin", "a", plugin_log)])
    cni.add_network_list(net, RT)
    assert not (cni_dirs["cache"] / "locks").exists()


# --- the cache can hold what the plugins configured (issue 6, item 4) ------------------


@pytest.mark.parametrize("length", [200, 221, 240])
def test_long_network_names_that_fit_a_file_name_are_cached(cni, plugin_log, length):
    rt = RT.copy(container_id="c" * 10)
    name = "n" * (255 - len("-cccccccccc-eth0") - (240 - length))
    net = chain(plugin_log, name=name)
    cni.add_network_list(net, rt)
    assert cni.get_network_list_cached_result(net, rt) is not None
    cni.del_network_list(net, rt)
    assert cni.get_network_list_cached_result(net, rt) is None


def test_a_cache_name_over_the_file_name_limit_fails_before_any_plugin(cni, plugin_log):
    rt = RT.copy(container_id="c" * 40)
    net = chain(plugin_log, name="n" * 220)
    with pytest.raises(CNIError) as err:
        cni.add_network_list(net, rt)
    assert err.value.code == 7
    assert "over the 255 a file name may have" in err.value.msg
    assert read_log(plugin_log) == []


def test_a_cache_dir_that_is_a_file_fails_before_any_plugin(plugin_dir, plugin_log, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    cni = CNIConfig(path=[str(plugin_dir)], cache_dir=str(blocker), timeout=30)
    with pytest.raises(CNIError) as err:
        cni.add_network_list(chain(plugin_log), RT)
    assert str(err.value) == f"{blocker} is not a directory"
    assert read_log(plugin_log) == []


# --- GC prunes what no attachment owns (issue 6, item 5) --------------------------------


def test_gc_prunes_container_locks_left_by_failed_and_never_deleted_operations(
    cni, plugin_log, cni_dirs
):
    from pycni.runtime import lock

    failing = make_net("net", [plugin("testplugin", "a", plugin_log, test={"add": "fail"})])
    for i in range(3):
        with pytest.raises(CNIError):
            cni.add_network_list(failing, RT.copy(container_id=f"failed{i}"))
    cni.add_network_list(chain(plugin_log), RT.copy(container_id="kept"))
    weird = RT.copy(container_id="x" * 300)  # a hashed lock name
    with pytest.raises(CNIError):
        cni.add_network_list(failing, weird)
    locks = cni_dirs["cache"] / lock.LOCK_DIR
    assert len(list(locks.glob("ctr*.lock"))) == 5
    held = lock.container_lock(str(cni_dirs["cache"]), "busy")
    held.acquire()  # a caller that does not take the GC lock
    try:
        cni.gc_network_list(chain(plugin_log), [("kept", "eth0")])
        assert sorted(p.name for p in locks.iterdir()) == ["ctr-busy.lock", "gc.lock"]
    finally:
        held.release()
    rt = RT.copy(container_id="kept")  # its lock comes back when it is needed
    cni.del_network_list(chain(plugin_log), rt)
    assert cni.get_network_list_cached_result(chain(plugin_log), rt) is None
