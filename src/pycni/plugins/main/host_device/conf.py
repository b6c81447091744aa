"""host-device's configuration, and finding the device it names.

Selectors, in the reference's priority: `device` > `hwaddr` > `kernelpath`
> `pciBusID` > an auxiliary device named by `runtimeConfig.deviceID`
(which, when it names a PCI device, replaces `pciBusID`). Each value is
checked before anything is touched: an interface name, a MAC, an absolute
path under /sys/devices/, a PCI address of the form DDDD:BB:DD.F.
"""

from __future__ import annotations

import os

from pycni.kernel.netlink import RtNetlink
from pycni.plugins.main.host_device.state import STATE_DIR
from pycni.plugins.pkg import netconf
from pycni.plugins.pkg.netconf import invalid
from pycni.spec.ipnet import parse_mac
from pycni.spec.jsonutil import get_bool, get_dict, get_str
from pycni.spec.validate import config_interface_name_problem

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.kernel.link import Link

#: sysfs folders the selectors read (tests point them at a fake tree)
SYS_BUS_PCI = "/sys/bus/pci/devices"
SYS_BUS_AUXILIARY = "/sys/bus/auxiliary/devices"
#: drivers that hand a PCI device to userspace (DPDK): nothing to move then
USERSPACE_DRIVERS = ("vfio-pci", "uio_pci_generic", "igb_uio")

_HEX = frozenset("0123456789abcdefABCDEF")


class NetConf(netconf.NetConf):
    __slots__ = (
        "aux_device",
        "data_dir",
        "device",
        "dpdk_mode",
        "hwaddr",
        "kernelpath",
        "pci_addr",
    )

    device: str
    hwaddr: str
    kernelpath: str
    pci_addr: str
    aux_device: str
    dpdk_mode: bool
    data_dir: str


def load(conf: dict, for_del: bool = False) -> NetConf:
    """Decode and validate (CNIError code 7 naming the key and value).

    `for_del`: a PCI device whose driver cannot be read (unplugged) is taken
    as not DPDK, so that DEL can still move the interface back."""
    n = NetConf(conf)
    n.device = get_str(conf, "device")
    n.hwaddr = get_str(conf, "hwaddr")
    n.kernelpath = get_str(conf, "kernelpath")
    n.pci_addr = get_str(conf, "pciBusID")
    # pycni's: where the host-side state is kept (tuning's key for its backups)
    n.data_dir = get_str(conf, "dataDir") or STATE_DIR
    if not n.data_dir.startswith("/") or "\0" in n.data_dir:
        raise invalid(f'invalid "dataDir" {n.data_dir!r}: it must be an absolute path')
    n.aux_device = ""
    # an untagged Go field: settable as "DPDKMode", recomputed from a PCI address
    n.dpdk_mode = get_bool(conf, "DPDKMode")
    rc = get_dict(conf, "runtimeConfig")
    device_id = get_str(rc, "deviceID") if rc else ""
    if device_id:
        _device_id(n, device_id)
    if not (n.device or n.hwaddr or n.kernelpath or n.pci_addr or n.aux_device):
        raise invalid('specify either "device", "hwaddr", "kernelpath" or "pciBusID"')
    if n.device:
        problem = config_interface_name_problem(n.device)
        if problem:
            raise invalid(f'invalid "device" {n.device!r}: {problem}')
    if n.hwaddr:
        try:
            parse_mac(n.hwaddr)
        except ValueError as err:
            raise invalid(f'invalid "hwaddr" {n.hwaddr!r}: failed to parse MAC address: {err}')
    if n.kernelpath:
        kp = n.kernelpath
        if not kp.startswith("/sys/devices/") or "/../" in kp + "/" or "\0" in kp:
            raise invalid(
                f'invalid "kernelpath" {kp!r}: kernel device path must be absolute and '
                "begin with /sys/devices/"
            )
    if n.pci_addr:
        problem = pci_address_problem(n.pci_addr)
        if problem:
            raise invalid(f'invalid "pciBusID" {n.pci_addr!r}: {problem}')
        try:
            n.dpdk_mode = has_dpdk_driver(n.pci_addr)
        except OSError as err:
            if not for_del:
                raise invalid(
                    f'error with host device: "pciBusID" {n.pci_addr!r}: cannot read its '
                    f"driver: {err.strerror or err}"
                )
            n.dpdk_mode = False
    return n


def _device_id(n: NetConf, device_id: str) -> None:
    """runtimeConfig.deviceID: a PCI device replaces pciBusID, else an
    auxiliary device; anything else is an error."""
    if "/" in device_id or device_id in (".", "..") or "\0" in device_id:
        raise invalid(f'invalid "runtimeConfig.deviceID" {device_id!r}: not a device ID')
    if os.path.exists(os.path.join(SYS_BUS_PCI, device_id)):
        n.pci_addr = device_id
    elif os.path.exists(os.path.join(SYS_BUS_AUXILIARY, device_id)):
        n.pci_addr = ""
        n.aux_device = device_id
    else:
        raise invalid(f"runtime config DeviceID {device_id} not found or unsupported")


def pci_address_problem(addr: str) -> str:
    """Why `addr` is not a PCI address DDDD:BB:DD.F (domain of 4 or more hex
    digits, bus and device 2, function 0-7), or ""."""
    parts = addr.split(":")
    if len(parts) != 3 or "." not in parts[2]:
        return "not a PCI address (domain:bus:device.function, e.g. 0000:03:00.1)"
    domain, bus = parts[0], parts[1]
    dev, _, fn = parts[2].partition(".")
    if len(domain) < 4 or len(domain) > 8 or not _HEX.issuperset(domain):
        return "the PCI domain must be 4 to 8 hex digits"
    if len(bus) != 2 or not _HEX.issuperset(bus):
        return "the PCI bus must be 2 hex digits"
    if len(dev) != 2 or not _HEX.issuperset(dev) or int(dev, 16) > 0x1F:
        return "the PCI device must be 2 hex digits, 00 to 1f"
    if len(fn) != 1 or fn not in "01234567":
        return "the PCI function must be 0 to 7"
    return ""


def has_dpdk_driver(pci_addr: str) -> bool:
    """The device is bound to a userspace driver (OSError: no driver link)."""
    driver = os.readlink(os.path.join(SYS_BUS_PCI, pci_addr, "driver"))
    return os.path.basename(driver.rstrip("/")) in USERSPACE_DRIVERS


# --- finding the device -------------------------------------------------------------------


def find_device(host_nl: RtNetlink, n: NetConf) -> Link:
    """The host link the config selects; CNIError code 7 when there is none."""
    from pycni.kernel.netlink import LinkNotFound

    if n.device:
        try:
            return host_nl.link_get(n.device)
        except LinkNotFound:
            raise _not_found(f'no interface named "{n.device}" (from "device")')
    if n.hwaddr:
        mac = parse_mac(n.hwaddr)
        for link in host_nl.link_list():
            if link.mac == mac:
                return link
        raise _not_found(f'no interface with MAC {mac} (from "hwaddr")')
    if n.kernelpath:
        net_dir = os.path.join(n.kernelpath, "net")
        return _first_link(host_nl, net_dir, "kernelpath")
    if n.pci_addr:
        net_dir = os.path.join(SYS_BUS_PCI, n.pci_addr, "net")
        if not os.path.lexists(net_dir):
            import glob

            matches = sorted(glob.glob(os.path.join(SYS_BUS_PCI, n.pci_addr, "virtio*", "net")))
            if not matches:
                raise _not_found(f"no net directory under pci device {n.pci_addr}")
            net_dir = matches[0]
        return _first_link(host_nl, net_dir, "pciBusID")
    net_dir = os.path.join(SYS_BUS_AUXILIARY, n.aux_device, "net")
    return _first_link(host_nl, net_dir, "runtimeConfig.deviceID")


def _first_link(host_nl: RtNetlink, net_dir: str, key: str) -> Link:
    """The first entry of a sysfs `net` folder (by name) that is a link here."""
    try:
        names = sorted(os.listdir(net_dir))
    except OSError as err:
        raise _not_found(
            f'failed to find network devices at "{net_dir}" (from "{key}"): {err.strerror or err}'
        )
    for name in names:
        link = host_nl.link_find(name)
        if link is not None:
            return link
    raise _not_found(f'failed to find network device in path {net_dir} (from "{key}")')


def _not_found(msg: str):
    return invalid(f"failed to find host device: {msg}")
