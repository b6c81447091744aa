"""pycni.runtime.cache: libcni's result cache, byte-compatible with Go."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from pycni.runtime import CNIConfig, RuntimeConf, cache
from pycni.runtime.loader import network_conf_from_bytes
from pycni.spec.errors import CNIError

from support.cni import conflist, file_mode, plugin

CONFIG = (
    b'{"cniVersion":"1.0.0","name":"mynet","plugins":[{"type":"bridge","bridge":"cni0",'
    b'"ipam":{"type":"host-local","subnet":"198.18.0.0/24"}},{"type":"portmap",'
    b'"capabilities":{"portMappings":true}}]}'
)
CID = "cnitool-77383ca0a0715733ca6f"

# Exactly what Go libcni v1.x writes (json.Marshal of cachedInfo: struct field
# order, map keys sorted, []byte as base64, no newline) after cnitool add with
# CNI_ARGS=IgnoreUnknown=1 and CAP_ARGS with a port mapping. (Current libcni
# leaves out an empty 1.x "dns"; older releases wrote "dns":{} -- both are read.)
GO_CACHE = (
    '{"kind":"cniCacheV1","containerId":"'
    + CID
    + '","config":"'
    + base64.b64encode(CONFIG).decode()
    + '","ifName":"eth0","networkName":"mynet",'
    '"netns":"/run/netns/test","cniArgs":[["IgnoreUnknown","1"]],'
    '"capabilityArgs":{"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]},'
    '"result":{"cniVersion":"1.0.0","interfaces":[{"mac":"5e:4f:1c:0a:9b:01",'
    '"name":"cni0"},{"mac":"ae:11:22:33:44:55","name":"veth1234"},{"mac":"0a:58:c6:12:00:02",'
    '"name":"eth0","sandbox":"/run/netns/test"}],"ips":[{"address":"198.18.0.2/24",'
    '"gateway":"198.18.0.1","interface":2}],"routes":[{"dst":"0.0.0.0/0","gw":"198.18.0.1"}]}}'
).encode()


@pytest.fixture
def go_cache(cni_dirs):
    results = cni_dirs["cache"] / "results"
    results.mkdir(mode=0o700)
    path = results / f"mynet-{CID}-eth0"
    path.write_bytes(GO_CACHE)
    return path


def rt(**kw) -> RuntimeConf:
    return RuntimeConf(
        kw.pop("container_id", CID),
        kw.pop("netns", "/run/netns/test"),
        kw.pop("ifname", "eth0"),
        **kw,
    )


def test_reads_a_cache_written_by_go(go_cache, cni_dirs):
    cni = CNIConfig([], cache_dir=str(cni_dirs["cache"]))
    net = network_conf_from_bytes(CONFIG)
    result = cni.get_network_list_cached_result(net, rt())
    assert result.cni_version == "1.0.0"
    assert [i.name for i in result.interfaces] == ["cni0", "veth1234", "eth0"]
    assert result.ips[0].address == "198.18.0.2/24"
    assert result.ips[0].interface == 2
    config, new_rt = cni.get_network_list_cached_config(net, rt(args=[("X", "Y")]))
    assert config == CONFIG
    assert new_rt.args == [("IgnoreUnknown", "1")]
    assert new_rt.capability_args == {
        "portMappings": [{"containerPort": 80, "hostPort": 8080, "protocol": "tcp"}]
    }
    assert new_rt.container_id == CID
    (att,) = cni.get_cached_attachments("")
    assert (att.container_id, att.network, att.ifname, att.netns) == (
        CID,
        "mynet",
        "eth0",
        "/run/netns/test",
    )
    assert att.config == CONFIG
    assert att.cni_args == [("IgnoreUnknown", "1")]
    assert cni.get_cached_attachments(CID) == [att]
    assert cni.get_cached_attachments("other") == []


def test_reads_an_older_go_cache_with_empty_dns(go_cache, cni_dirs):
    go_cache.write_bytes(
        GO_CACHE.replace(
            b'"result":{"cniVersion":"1.0.0",', b'"result":{"cniVersion":"1.0.0","dns":{},'
        )
    )
    cni = CNIConfig([], cache_dir=str(cni_dirs["cache"]))
    result = cni.get_network_list_cached_result(network_conf_from_bytes(CONFIG), rt())
    assert result.ips[0].gateway == "198.18.0.1"


def test_cached_result_is_converted_to_the_config_version(go_cache, cni_dirs):
    cni = CNIConfig([], cache_dir=str(cni_dirs["cache"]))
    net = network_conf_from_bytes(CONFIG.replace(b'"1.0.0"', b'"0.4.0"', 1))
    result = cni.get_network_list_cached_result(net, rt())
    assert result.cni_version == "0.4.0"
    assert result.to_dict()["ips"][0]["version"] == "4"


def test_we_write_what_go_writes(cni_dirs):
    result = {
        "cniVersion": "1.0.0",
        "interfaces": [
            {"mac": "5e:4f:1c:0a:9b:01", "name": "cni0"},
            {"mac": "ae:11:22:33:44:55", "name": "veth1234"},
            {"mac": "0a:58:c6:12:00:02", "name": "eth0", "sandbox": "/run/netns/test"},
        ],
        "ips": [{"interface": 2, "address": "198.18.0.2/24", "gateway": "198.18.0.1"}],
        "routes": [{"gw": "198.18.0.1", "dst": "0.0.0.0/0"}],
    }
    caps = {"portMappings": [{"protocol": "tcp", "hostPort": 8080, "containerPort": 80}]}
    data = cache.encode(
        CID, CONFIG, "eth0", "mynet", "/run/netns/test", [("IgnoreUnknown", "1")], caps, result
    )
    assert data == GO_CACHE


def test_empty_fields_are_omitted_like_go():
    assert cache.encode("c", b"{}", "eth0", "n") == (
        b'{"kind":"cniCacheV1","containerId":"c","config":"e30=","ifName":"eth0","networkName":"n"}'
    )
    assert b"\\u003c" in cache.encode("c", b"{}", "eth0", "n", capability_args={"a": "<&>"})


def test_cache_file_path_rules(tmp_path):
    assert cache.file_path(str(tmp_path), "n", "c", "eth0") == str(tmp_path / "results/n-c-eth0")
    assert cache.file_path("", "n", "c", "eth0") == "/var/lib/cni/results/n-c-eth0"
    with pytest.raises(CNIError) as err:
        cache.file_path(str(tmp_path), "n", "", "eth0")
    assert str(err.value) == (
        'cache file path requires network name ("n"), container ID (""), '
        'and interface name ("eth0")'
    )
    with pytest.raises(CNIError, match=r"invalid cache file name component"):
        cache.file_path(str(tmp_path), "n", "../../etc", "eth0")


def test_write_is_atomic_and_private(tmp_path, monkeypatch):
    cache_dir = tmp_path / "new" / "cache"
    path = cache.add(str(cache_dir), "n", "c", "eth0", b"{}", result={"cniVersion": "1.0.0"})
    assert file_mode(cache_dir) == 0o700
    assert file_mode(cache_dir / "results") == 0o700
    assert file_mode(path) == 0o600
    assert os.listdir(cache_dir / "results") == ["n-c-eth0"]
    before = Path(path).read_bytes()

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        cache.add(str(cache_dir), "n", "c", "eth0", b"{}", result={"cniVersion": "0.4.0"})
    assert Path(path).read_bytes() == before  # the old record is intact
    assert os.listdir(cache_dir / "results") == ["n-c-eth0"]  # no temp file left


def test_legacy_bare_result_cache(cni_dirs, plugin_dir):
    results = cni_dirs["cache"] / "results"
    results.mkdir()
    (results / "net-c1-eth0").write_text(
        json.dumps({"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "198.18.0.9/24"}]})
    )
    cni = CNIConfig([str(plugin_dir)], cache_dir=str(cni_dirs["cache"]))
    net = network_conf_from_bytes(json.dumps(conflist("net", [plugin()], version="0.3.1")).encode())
    result = cni.get_network_list_cached_result(net, RuntimeConf("c1", "/x", "eth0"))
    assert result.ips[0].address == "198.18.0.9/24"
    # a legacy file is not an attachment, and not a config
    assert cni.get_cached_attachments() == []
    with pytest.raises(CNIError, match=r'^read cached network "net" config has wrong kind: $'):
        cni.get_network_list_cached_config(net, RuntimeConf("c1", "/x", "eth0"))


def test_missing_cache(cni_dirs):
    cni = CNIConfig([], cache_dir=str(cni_dirs["cache"]))
    net = network_conf_from_bytes(CONFIG)
    assert cni.get_network_list_cached_result(net, rt()) is None
    assert cni.get_network_list_cached_config(net, rt()) == (None, None)
    assert cni.get_cached_attachments() == []


def test_corrupt_cache_errors(go_cache, cni_dirs):
    cni = CNIConfig([], cache_dir=str(cni_dirs["cache"]))
    net = network_conf_from_bytes(CONFIG)
    go_cache.write_bytes(b"")
    with pytest.raises(CNIError):
        cni.get_network_list_cached_result(net, rt())
    with pytest.raises(CNIError, match=r'^failed to unmarshal cached network "mynet" config: '):
        cni.get_network_list_cached_config(net, rt())
    go_cache.write_bytes(b'{"kind": "other"}')
    with pytest.raises(CNIError, match=r"config has wrong kind: other$"):
        cni.get_network_list_cached_config(net, rt())


def test_unconvertible_cached_result(go_cache, cni_dirs):
    record = json.loads(GO_CACHE)
    record["result"] = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0"}]}
    go_cache.write_text(json.dumps(record))
    cni = CNIConfig([], cache_dir=str(cni_dirs["cache"]))
    net = network_conf_from_bytes(CONFIG.replace(b'"1.0.0"', b'"0.2.0"', 1))
    with pytest.raises(CNIError) as err:
        cni.get_network_list_cached_result(net, rt())
    assert str(err.value) == (
        'failed to convert cached result to config version "0.2.0": '
        "cannot convert: no valid IP addresses"
    )


def test_list_attachments_filters_like_libcni(cni_dirs):
    results = cni_dirs["cache"] / "results"
    results.mkdir()

    def record(name, **fields):
        doc = {
            "kind": "cniCacheV1",
            "containerId": "c1",
            "config": "e30=",
            "ifName": "eth0",
            "networkName": "net",
        }
        doc.update(fields)
        (results / name).write_text(json.dumps(doc))

    record("net-c1-eth0")
    record("net-c1-eth1", ifName="eth1", netns="/run/netns/a", cniArgs=[["A", "B"]])
    record("net-c2-eth0", containerId="c2")
    record("net-c1-eth2", containerId="c3")  # name says c1, record says c3
    record("net-c1-eth3", ifName="")
    record("net-c1-eth4", networkName="")
    record("net-c1-eth5", kind="cniCacheV2")
    (results / "net-c1-eth6").write_text("{broken")
    (results / "c1-").write_text("{}")
    cni = CNIConfig([], cache_dir=str(cni_dirs["cache"]))
    every = cni.get_cached_attachments()
    assert [(a.container_id, a.ifname) for a in every] == [
        ("c1", "eth0"),
        ("c1", "eth1"),
        ("c3", "eth0"),
        ("c2", "eth0"),
    ]
    mine = cni.get_cached_attachments("c1")
    assert [(a.container_id, a.ifname) for a in mine] == [("c1", "eth0"), ("c1", "eth1")]
    assert mine[1].netns == "/run/netns/a"
    assert mine[1].cni_args == [("A", "B")]
    assert mine[0].config == b"{}"
