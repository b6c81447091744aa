"""The parts of an IPAM plugin's config that every IPAM plugin reads alike.

host-local and static both take the `ipam` object and its `routes` list; one
decoder gives both plugins the same checks and the same messages (code 7,
the route's index and the bad value named).
"""

from __future__ import annotations

from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG, CNIError
from pycni.spec.jsonutil import ci_get, get_list, get_str, json_kind

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import Route


def _invalid(msg: str) -> CNIError:
    return CNIError(ERR_INVALID_NETWORK_CONFIG, msg)


def ipam_section(conf: dict) -> dict:
    """The config's `ipam` object (the reference's message when it is missing)."""
    ipam = ci_get(conf, "ipam")
    if ipam is None:
        raise _invalid("IPAM config missing 'ipam' key")
    if not isinstance(ipam, dict):
        raise _invalid(f"invalid ipam: expected an object, got {json_kind(ipam)}")
    return ipam


def parse_routes(ipam: dict) -> list[Route]:
    """`ipam.routes` as Routes; dst must be a CIDR, gw an IP, numbers in range."""
    try:
        items = get_list(ipam, "routes") or []
    except CNIError as err:
        raise _invalid(f"invalid ipam.routes: {err.msg}")
    if not items:
        return []
    from pycni.spec.ipnet import go_cidr, go_ip
    from pycni.spec.jsonutil import get_int
    from pycni.spec.result import Route

    routes = []
    for i, item in enumerate(items):
        where = f"ipam.routes[{i}]"
        if not isinstance(item, dict):
            raise _invalid(f"invalid {where}: expected a route object, got {json_kind(item)}")
        try:
            dst = get_str(item, "dst")
            gw = get_str(item, "gw")
            ints = [get_int(item, key) for key in ("mtu", "advmss", "priority")]
            opt = [
                None if ci_get(item, key) is None else get_int(item, key)
                for key in ("table", "scope")
            ]
        except CNIError as err:
            raise _invalid(f"invalid {where}: {err.msg}")
        if not dst:
            raise _invalid(f"invalid {where}: dst is required")
        try:
            go_cidr(dst)
        except ValueError:
            raise _invalid(f"invalid {where}: dst {dst} is not a valid CIDR")
        if gw:
            try:
                go_ip(gw)
            except ValueError:
                raise _invalid(f"invalid {where}: gw {gw} is not a valid IP")
        route = Route(dst, gw or None, ints[0], ints[1], ints[2], opt[0], opt[1])
        problem = route.range_problem()
        if problem:
            raise _invalid(f"invalid {where}: {problem}")
        routes.append(route)
    return routes
