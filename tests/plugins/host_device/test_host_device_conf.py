"""host-device's selectors against a fake sysfs: PCI addresses, the
runtime's deviceID (PCI or auxiliary), and the DPDK case, where nothing is
moved (run in-process, so the sysfs folders can be replaced)."""

from __future__ import annotations

import io
import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pycni.plugins.main import host_device
from pycni.plugins.main.host_device import conf as hdconf
from pycni.skel import run
from pycni.spec.errors import CNIError


@pytest.fixture
def sysfs(tmp_path, monkeypatch):
    """/sys/bus/{pci,auxiliary}/devices in tmp_path, with drivers folders."""
    pci = tmp_path / "pci"
    aux = tmp_path / "aux"
    drivers = tmp_path / "drivers"
    for d in (pci, aux, drivers / "vfio-pci", drivers / "ixgbe"):
        d.mkdir(parents=True)
    monkeypatch.setattr(hdconf, "SYS_BUS_PCI", str(pci))
    monkeypatch.setattr(hdconf, "SYS_BUS_AUXILIARY", str(aux))

    def device(addr: str, driver: str | None, where=pci) -> None:
        (where / addr).mkdir()
        if driver:
            os.symlink(drivers / driver, where / addr / "driver")

    return device


def test_dpdk_driver_is_detected(sysfs):
    sysfs("0000:03:00.1", "vfio-pci")
    sysfs("0000:03:00.2", "ixgbe")
    assert hdconf.load({"pciBusID": "0000:03:00.1"}).dpdk_mode
    assert not hdconf.load({"pciBusID": "0000:03:00.2"}).dpdk_mode


def test_a_pci_device_without_driver_fails_add_but_not_del(sysfs):
    sysfs("0000:03:00.3", None)
    with pytest.raises(CNIError) as e:
        hdconf.load({"pciBusID": "0000:03:00.3"})
    assert e.value.code == 7 and "0000:03:00.3" in e.value.msg
    assert not hdconf.load({"pciBusID": "0000:03:00.3"}, for_del=True).dpdk_mode


def test_device_id_names_a_pci_device_first_then_an_auxiliary_one(sysfs, tmp_path):
    sysfs("0000:05:00.0", "ixgbe")
    sysfs("mlx5_core.sf.4", None, where=tmp_path / "aux")
    n = hdconf.load({"pciBusID": "0000:09:00.0", "runtimeConfig": {"deviceID": "0000:05:00.0"}})
    assert n.pci_addr == "0000:05:00.0"
    n = hdconf.load({"runtimeConfig": {"deviceID": "mlx5_core.sf.4"}})
    assert n.aux_device == "mlx5_core.sf.4" and n.pci_addr == ""


def test_dpdk_add_moves_nothing_and_returns_the_interface(sysfs, host_ns, container_ns):
    sysfs("0000:03:00.1", "vfio-pci")
    conf = {
        "cniVersion": "1.0.0",
        "name": "hdnet",
        "type": "host-device",
        "pciBusID": "0000:03:00.1",
    }
    env = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "hd-ctr",
        "CNI_NETNS": container_ns.path,
        "CNI_IFNAME": "net1",
        "CNI_PATH": "/usr/lib/cni",
    }
    out = io.StringIO()
    code = run(env, io.BytesIO(json.dumps(conf).encode()), out, io.StringIO(), host_device.PLUGIN)
    assert code == 0, out.getvalue()
    assert json.loads(out.getvalue())["interfaces"] == [
        {"name": "net1", "sandbox": container_ns.path}
    ]
    env["CNI_COMMAND"] = "DEL"
    code = run(
        env, io.BytesIO(json.dumps(conf).encode()), io.StringIO(), io.StringIO(), host_device.PLUGIN
    )
    assert code == 0


@pytest.mark.parametrize("addr", ["0000:00:00.0", "0000:ff:1f.7", "10000:3a:00.1", "ABCD:0A:1F.3"])
def test_pci_addresses_accepted(addr):
    assert hdconf.pci_address_problem(addr) == ""


@given(st.text(max_size=20))
def test_pci_address_check_never_raises_and_never_lets_a_slash_through(text):
    problem = hdconf.pci_address_problem(text)
    if "/" in text or "\0" in text or text in ("", ".", ".."):
        assert problem


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFF), st.integers(0, 0x1F), st.integers(0, 7))
def test_every_well_formed_address_is_accepted(domain, bus, dev, fn):
    assert hdconf.pci_address_problem(f"{domain:04x}:{bus:02x}:{dev:02x}.{fn}") == ""
