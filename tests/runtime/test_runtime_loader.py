"""pycni.runtime.loader: libcni's LoadNetworkConf and friends (reference 5.1)."""

from __future__ import annotations

import json

import pytest

from pycni.runtime import loader
from pycni.runtime.loader import NoConfigsFoundError, NotFoundError, load_network_conf
from pycni.spec.errors import CNIError

from support.cni import conflist, write_json


def types(net) -> list[str]:
    return [p.type for p in net.plugins]


def test_finds_conflist_by_name(tmp_path):
    write_json(tmp_path / "10-a.conflist", conflist("a", [{"type": "bridge"}]))
    write_json(tmp_path / "20-b.conflist", conflist("b", [{"type": "ptp"}, {"type": "tuning"}]))
    net = load_network_conf(str(tmp_path), "b")
    assert net.name == "b"
    assert types(net) == ["ptp", "tuning"]
    assert net.raw_bytes == (tmp_path / "20-b.conflist").read_bytes()


def test_duplicate_names_first_file_wins(tmp_path):
    write_json(tmp_path / "20-x.conflist", conflist("net", [{"type": "second"}]))
    write_json(tmp_path / "10-x.conflist", conflist("net", [{"type": "first"}]))
    write_json(tmp_path / "05-x.conf", {"name": "net", "type": "single"})
    assert types(load_network_conf(str(tmp_path), "net")) == ["first"]


def test_any_broken_conflist_aborts_the_lookup(tmp_path):
    write_json(tmp_path / "10-good.conflist", conflist("good", [{"type": "bridge"}]))
    (tmp_path / "20-broken.conflist").write_text("{not json")
    write_json(tmp_path / "30-later.conflist", conflist("later", [{"type": "bridge"}]))
    write_json(tmp_path / "40.conf", {"name": "single", "type": "bridge"})
    # found before the broken file is reached
    assert load_network_conf(str(tmp_path), "good").name == "good"
    for name in ("later", "single", "missing"):
        with pytest.raises(CNIError, match=r"^error parsing configuration list: "):
            load_network_conf(str(tmp_path), name)


def test_conflist_without_plugins_or_name(tmp_path):
    write_json(tmp_path / "a.conflist", {"cniVersion": "1.0.0", "name": "a"})
    with pytest.raises(CNIError, match=r"^no plugin configs found$"):
        load_network_conf(str(tmp_path), "a")
    write_json(tmp_path / "a.conflist", {"cniVersion": "1.0.0", "plugins": [{"type": "x"}]})
    with pytest.raises(CNIError, match=r"^error parsing configuration list: no name$"):
        load_network_conf(str(tmp_path), "a")


def test_sibling_folder_plugins_are_appended(tmp_path):
    write_json(tmp_path / "10.conflist", conflist("net", [{"type": "bridge"}]))
    folder = tmp_path / "net"
    folder.mkdir()
    write_json(
        folder / "20-portmap.conf", {"type": "portmap", "capabilities": {"portMappings": True}}
    )
    write_json(folder / "10-tuning.conf", {"type": "tuning"})
    write_json(folder / "30-ignored.json", {"type": "ignored"})  # only .conf files
    (folder / "40-dir.conf").mkdir()  # directories are skipped
    net = load_network_conf(str(tmp_path), "net")
    assert types(net) == ["bridge", "tuning", "portmap"]
    # the cached config bytes are the file's, without the folder's plugins
    assert json.loads(net.raw_bytes)["plugins"] == [{"type": "bridge"}]


def test_sibling_folder_only(tmp_path):
    write_json(tmp_path / "10.conflist", {"cniVersion": "1.0.0", "name": "net"})
    (tmp_path / "net").mkdir()
    write_json(tmp_path / "net" / "a.conf", {"type": "loopback"})
    assert types(load_network_conf(str(tmp_path), "net")) == ["loopback"]


def test_load_only_inlined_plugins_ignores_the_folder(tmp_path):
    write_json(
        tmp_path / "10.conflist", conflist("net", [{"type": "bridge"}], loadOnlyInlinedPlugins=True)
    )
    (tmp_path / "net").mkdir()
    write_json(tmp_path / "net" / "a.conf", {"type": "tuning"})
    assert types(load_network_conf(str(tmp_path), "net")) == ["bridge"]
    write_json(
        tmp_path / "10.conflist",
        {"cniVersion": "1.0.0", "name": "net", "loadOnlyInlinedPlugins": "true"},
    )
    with pytest.raises(CNIError, match=r"`loadOnlyInlinedPlugins` is true, and no 'plugins' key"):
        load_network_conf(str(tmp_path), "net")


def test_broken_sibling_plugin_aborts(tmp_path):
    write_json(tmp_path / "10.conflist", conflist("net", [{"type": "bridge"}]))
    (tmp_path / "net").mkdir()
    write_json(tmp_path / "net" / "a.conf", {"notype": True})
    with pytest.raises(CNIError, match=r"^error parsing configuration: missing 'type'$"):
        load_network_conf(str(tmp_path), "net")


def test_single_conf_fallback_and_upconversion(tmp_path):
    write_json(tmp_path / "10.conflist", conflist("other", [{"type": "bridge"}]))
    write_json(
        tmp_path / "20.json",
        {"cniVersion": "0.4.0", "name": "legacy", "type": "ptp", "ipMasq": True},
    )
    write_json(tmp_path / "30.conf", {"cniVersion": "1.0.0", "name": "legacy", "type": "later"})
    net = load_network_conf(str(tmp_path), "legacy")
    assert (net.name, net.cni_version, types(net)) == ("legacy", "0.4.0", ["ptp"])
    assert net.plugins[0].raw["ipMasq"] is True
    doc = json.loads(net.raw_bytes)
    assert doc["name"] == "legacy" and doc["cniVersion"] == "0.4.0"
    assert doc["plugins"][0]["type"] == "ptp"
    # an up-converted config gets no sibling folder
    (tmp_path / "legacy").mkdir()
    write_json(tmp_path / "legacy" / "a.conf", {"type": "tuning"})
    assert types(load_network_conf(str(tmp_path), "legacy")) == ["ptp"]


def test_broken_single_conf_aborts(tmp_path):
    write_json(tmp_path / "10.conf", {"name": "a"})
    write_json(tmp_path / "20.conf", {"name": "b", "type": "bridge"})
    with pytest.raises(CNIError, match=r"^error parsing configuration: missing 'type'$"):
        load_network_conf(str(tmp_path), "b")


def test_missing_dir_is_no_configs_found(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(NoConfigsFoundError) as err:
        load_network_conf(str(missing), "x")
    assert str(err.value) == f"no net configurations found in {missing}"
    assert err.value.dir == str(missing)


def test_empty_dir_is_no_configs_found(tmp_path):
    (tmp_path / "README").write_text("no configs here")
    with pytest.raises(NoConfigsFoundError):
        load_network_conf(str(tmp_path), "x")


def test_not_found_with_conflists_only(tmp_path):
    write_json(tmp_path / "10.conflist", conflist("a", [{"type": "bridge"}]))
    with pytest.raises(NotFoundError) as err:
        load_network_conf(str(tmp_path), "x")
    assert str(err.value) == f'no net configuration with name "x" in {tmp_path}'
    assert (err.value.dir, err.value.name) == (str(tmp_path), "x")


def test_not_found_with_single_confs(tmp_path):
    write_json(tmp_path / "10.conf", {"name": "a", "type": "bridge"})
    with pytest.raises(NotFoundError):
        load_network_conf(str(tmp_path), "x")


def test_extensions_are_exact(tmp_path):
    write_json(tmp_path / "a.CONFLIST", conflist("a", [{"type": "bridge"}]))
    write_json(tmp_path / "a.conflist.bak", conflist("a", [{"type": "bridge"}]))
    (tmp_path / "dir.conflist").mkdir()
    with pytest.raises(NoConfigsFoundError):
        load_network_conf(str(tmp_path), "a")
    assert loader.conf_files(str(tmp_path), (".conflist",)) == []


def test_conf_files_sorted(tmp_path):
    for name in ("b.conf", "a.json", "c.conf", "a.conflist"):
        (tmp_path / name).write_text("{}")
    assert loader.conf_files(str(tmp_path), (".conf", ".json")) == [
        str(tmp_path / n) for n in ("a.json", "b.conf", "c.conf")
    ]
    assert loader.conf_files(str(tmp_path / "missing"), (".conf",)) == []


def test_unreadable_file(tmp_path):
    (tmp_path / "a.conflist").symlink_to(tmp_path / "dangling")
    with pytest.raises(CNIError, match=r"^error reading .*a.conflist: open .*: no such file"):
        load_network_conf(str(tmp_path), "a")


def test_version_selection_is_applied(tmp_path):
    write_json(
        tmp_path / "a.conflist",
        conflist(
            "a", [{"type": "bridge"}], version="0.4.0", cniVersions=["1.0.0", "99.0.0", "0.3.1"]
        ),
    )
    assert load_network_conf(str(tmp_path), "a").cni_version == "1.0.0"


def test_load_all_networks(tmp_path):
    write_json(tmp_path / "10-a.conflist", conflist("a", [{"type": "bridge"}]))
    (tmp_path / "20-broken.conflist").write_text("[]")
    write_json(tmp_path / "30-a.conflist", conflist("a", [{"type": "ptp"}]))
    write_json(tmp_path / "40.conf", {"name": "single", "type": "bridge", "cniVersion": "0.3.1"})
    write_json(tmp_path / "50.json", {"name": "bad name", "type": "bridge"})
    out = loader.load_all_networks(str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p, _ in out] == [
        "10-a.conflist",
        "20-broken.conflist",
        "30-a.conflist",
        "40.conf",
        "50.json",
    ]
    kinds = [type(item).__name__ for _, item in out]
    assert kinds[0] == kinds[2] == kinds[3] == "NetworkConfigList"
    assert isinstance(out[1][1], CNIError)
    assert isinstance(out[4][1], CNIError)
    assert "invalid characters found in network name" in str(out[4][1])
    assert out[3][1].cni_version == "0.3.1"
    assert loader.load_all_networks(str(tmp_path / "missing")) == []


def test_a_deeply_nested_conflist_loads_like_in_go(tmp_path):
    """Issue 6, item 10: 5000 levels (Go accepts 10000) no longer make the
    whole directory unusable; past Go's limit the lookup fails as in Go."""
    deep = "[" * 5000 + "]" * 5000
    doc = json.dumps(conflist("deep", [{"type": "bridge", "x": "@"}])).replace('"@"', deep)
    (tmp_path / "10-deep.conflist").write_text(doc)
    write_json(tmp_path / "20-ok.conflist", conflist("ok", [{"type": "ptp"}]))
    assert types(load_network_conf(str(tmp_path), "ok")) == ["ptp"]
    net = load_network_conf(str(tmp_path), "deep")
    assert net.raw_bytes == doc.encode() and types(net) == ["bridge"]
    too_deep = doc.replace(deep, "[" * 10001 + "]" * 10001)
    (tmp_path / "10-deep.conflist").write_text(too_deep)
    with pytest.raises(CNIError, match="exceeded max depth"):
        load_network_conf(str(tmp_path), "ok")
