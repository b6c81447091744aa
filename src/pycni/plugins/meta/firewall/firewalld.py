"""The firewalld backend: each container address a source of a firewalld zone.

As the reference does it over D-Bus (interface org.fedoraproject.FirewallD1.zone):
ADD `addSource(zone, "<ip>/32")` per address, ZONE_ALREADY_SET ignored; DEL
`removeSource`, every error ignored; CHECK `querySource`, failing only when
the call fails (its boolean answer is not looked at, as in the reference).

Where firewalld is not on the system bus (no bus socket, or no owner of
org.fedoraproject.FirewallD1), ADD and CHECK fail with "firewalld backend is
not supported: no firewalld on the system bus"; DEL succeeds (an ADD can
have added nothing there). The reference fails DEL too when there is no bus.
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.plugins.meta.firewall import dbus
from pycni.plugins.meta.firewall.busaddr import bus_may_exist
from pycni.spec import errors
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.meta.firewall.conf import NetConf
    from pycni.plugins.pkg.transaction import Undo
    from pycni.spec.result import Result

NAME = "org.fedoraproject.FirewallD1"
PATH = "/org/fedoraproject/FirewallD1"
ZONE_INTERFACE = NAME + ".zone"
ZONE_ALREADY_SET = "ZONE_ALREADY_SET"
NOT_SUPPORTED = "firewalld backend is not supported: no firewalld on the system bus"


def running() -> bool:
    """Whether firewalld owns its name on the system bus (the reference's
    isFirewalldRunning); no socket file means no, without a connection."""
    if not bus_may_exist():
        return False
    return dbus.name_has_owner(NAME, dbus.system_bus_path())


def _connect() -> dbus.Bus | None:
    if not running():
        return None
    try:
        return dbus.Bus()
    except dbus.DBusError:
        return None


def _source(ip: str, family: int) -> str:
    return f"{ip}/32" if family == 4 else f"{ip}/128"


def add(conf: NetConf, result: Result, undo: Undo) -> None:
    """Add every address as a source of the zone; the ones this ADD added
    are removed again if a later step fails."""
    bus = _connect()
    if bus is None:
        raise CNIError(errors.ERR_INTERNAL, NOT_SUPPORTED)
    zone = conf.firewalld_zone
    with bus:
        for ipc in result.ips:
            source = _source(ipc.ip, ipc.family)
            step("firewall.add.firewalld")
            try:
                bus.call(NAME, PATH, ZONE_INTERFACE, "addSource", "ss", (zone, source))
            except (dbus.DBusError, OSError) as err:
                if ZONE_ALREADY_SET not in str(err):
                    raise CNIError(
                        errors.ERR_INTERNAL,
                        f"failed to add the address {source} to {zone} zone: {err}",
                    ) from err
                continue
            undo.push(f"remove {source} from firewalld zone {zone}", remove_sources, zone, [source])


def delete(conf: NetConf, result: Result | None) -> None:
    if result is not None and result.ips:
        sources = [_source(ipc.ip, ipc.family) for ipc in result.ips]
        remove_sources(conf.firewalld_zone, sources)


def remove_sources(zone: str, sources: list[str]) -> None:
    """removeSource of each; every error ignored, as the reference's DEL does."""
    bus = _connect()
    if bus is None:
        return
    with bus:
        for source in sources:
            step("firewall.del.firewalld")
            try:
                bus.call(NAME, PATH, ZONE_INTERFACE, "removeSource", "ss", (zone, source))
            except (dbus.DBusError, OSError):
                pass


def check(conf: NetConf, result: Result) -> None:
    bus = _connect()
    if bus is None:
        raise CNIError(errors.ERR_INTERNAL, NOT_SUPPORTED)
    with bus:
        for ipc in result.ips:
            source = _source(ipc.ip, ipc.family)
            try:
                bus.call(
                    NAME, PATH, ZONE_INTERFACE, "querySource", "ss", (conf.firewalld_zone, source)
                )
            except (dbus.DBusError, OSError) as err:
                raise CNIError(
                    errors.ERR_INTERNAL,
                    f"failed to find the address {source} in {conf.firewalld_zone} zone",
                ) from err
