"""The Go types the dhcp plugin and daemon exchange, and Result <-> Go dicts.

Why: net/rpc sends Go structs by gob, so both ends must agree on field names
and Go kinds, not on JSON.  The Go plugin sends a `skel.CmdArgs` and decodes
the daemon's reply into `types/100.Result`; gob matches fields by name and
drops what the receiver lacks, so we describe the newest field set (Mtu,
SocketPath, PciID, route MTU/AdvMSS/Priority/Table/Scope) and 1.1.1 simply
ignores the extras.

Shapes of the dicts (Go field names): net.IP is bytes (gob ignores
TextMarshaler, golang.org/issue/6760, so it travels as plain []byte: 4 or
16 bytes, empty for nil); net.IPNet is {"IP": bytes, "Mask": bytes};
*int fields are int or None.  gob cannot tell a nil pointer from a pointer
to 0 (zero values are not sent), so an IPConfig.Interface or Route.Table of
0 arrives as None: Go's own plugin has the same limit.
"""

from __future__ import annotations

from pycni.plugins.ipam.dhcp.gob import BYTES, INT, STRING, UINT, Ptr, Slice, Struct
from pycni.spec.ipnet import format_ip6, go_cidr, go_ip, parse_ip
from pycni.spec.result import DNS, Interface, IPConfig, Result, Route

CMD_ARGS = Struct(
    "CmdArgs",
    [
        ("ContainerID", STRING),
        ("Netns", STRING),
        ("IfName", STRING),
        ("Args", STRING),
        ("Path", STRING),
        # a string in CNI >= 1.2 (CNI_NETNS_OVERRIDE); absent from 1.1.1's
        ("NetnsOverride", STRING),
        ("StdinData", BYTES),
    ],
)
IPNET = Struct("IPNet", [("IP", BYTES), ("Mask", BYTES)])
INTERFACE = Struct(
    "Interface",
    [
        ("Name", STRING),
        ("Mac", STRING),
        ("Mtu", INT),
        ("Sandbox", STRING),
        ("SocketPath", STRING),
        ("PciID", STRING),
    ],
)
IPCONFIG = Struct("IPConfig", [("Interface", Ptr(INT)), ("Address", IPNET), ("Gateway", BYTES)])
ROUTE = Struct(
    "Route",
    [
        ("Dst", IPNET),
        ("GW", BYTES),
        ("MTU", INT),
        ("AdvMSS", INT),
        ("Priority", INT),
        ("Table", Ptr(INT)),
        ("Scope", Ptr(INT)),
    ],
)
DNS_T = Struct(
    "DNS",
    [
        ("Nameservers", Slice(STRING)),
        ("Domain", STRING),
        ("Search", Slice(STRING)),
        ("Options", Slice(STRING)),
    ],
)
RESULT = Struct(
    "Result",
    [
        ("CNIVersion", STRING),
        ("Interfaces", Slice(Ptr(INTERFACE))),
        ("IPs", Slice(Ptr(IPCONFIG))),
        ("Routes", Slice(Ptr(ROUTE))),
        ("DNS", DNS_T),
    ],
)
EMPTY = Struct("struct {}", [])
# net/rpc's headers (Go's net/rpc Request and Response).
REQUEST = Struct("Request", [("ServiceMethod", STRING), ("Seq", UINT)])
RESPONSE = Struct("Response", [("ServiceMethod", STRING), ("Seq", UINT), ("Error", STRING)])

# The DHCP service's methods: argument and reply types.
METHODS = {"DHCP.Allocate": (CMD_ARGS, RESULT), "DHCP.Release": (CMD_ARGS, EMPTY)}


def cmdargs(
    container_id: str, netns: str, ifname: str, args: str, path: str, stdin_data: bytes
) -> dict:
    """A skel.CmdArgs as the Go plugin sends it (Netns should be absolute)."""
    return {
        "ContainerID": container_id,
        "Netns": netns,
        "IfName": ifname,
        "Args": args,
        "Path": path,
        "StdinData": bytes(stdin_data),
    }


# ------------------------------------------------------------ Result -> Go


def _ip_bytes(text: str) -> bytes:
    family, value = parse_ip(text)
    return value.to_bytes(4 if family == 4 else 16, "big")


def _ipnet(cidr: str) -> dict:
    ip, prefix, family = go_cidr(cidr)
    width = 32 if family == 4 else 128
    mask = ((1 << width) - 1) ^ ((1 << (width - prefix)) - 1)
    return {"IP": _ip_bytes(ip), "Mask": mask.to_bytes(width // 8, "big")}


def result_to_go(result: Result) -> dict:
    """A Result as the dict of a Go current.Result (for gob)."""
    return {
        "CNIVersion": result.cni_version,
        "Interfaces": [
            {
                "Name": i.name,
                "Mac": i.mac,
                "Mtu": i.mtu,
                "Sandbox": i.sandbox,
                "SocketPath": i.socket_path,
                "PciID": i.pci_id,
            }
            for i in result.interfaces
        ],
        "IPs": [
            {
                "Interface": ip.interface,
                "Address": _ipnet(ip.address),
                "Gateway": _ip_bytes(ip.gateway) if ip.gateway else b"",
            }
            for ip in result.ips
        ],
        "Routes": [
            {
                "Dst": _ipnet(r.dst),
                "GW": _ip_bytes(r.gw) if r.gw else b"",
                "MTU": r.mtu,
                "AdvMSS": r.advmss,
                "Priority": r.priority,
                "Table": r.table,
                "Scope": r.scope,
            }
            for r in result.routes
        ],
        "DNS": {
            "Nameservers": list(result.dns.nameservers),
            "Domain": result.dns.domain,
            "Search": list(result.dns.search),
            "Options": list(result.dns.options),
        },
    }


# ------------------------------------------------------------ Go -> Result

_V4_IN_V6 = b"\x00" * 10 + b"\xff\xff"


def _to4(raw: bytes) -> bytes | None:
    """Go's net.IP.To4."""
    if len(raw) == 4:
        return raw
    if len(raw) == 16 and raw[:12] == _V4_IN_V6:
        return raw[12:]
    return None


def ip_text(raw: bytes) -> str | None:
    """Go's net.IP.String() of 4/16 raw bytes; None for a nil IP."""
    if not raw:
        return None
    v4 = _to4(raw)
    if v4 is not None:
        return ".".join(str(b) for b in v4)
    if len(raw) == 16:
        return format_ip6(raw)
    raise ValueError(f"invalid IP address of {len(raw)} bytes: {raw.hex()}")


def ipnet_text(d: dict) -> str:
    """Go's IPNet.String() ("ip/prefix", host bits kept) of {"IP", "Mask"}."""
    raw, mask = bytes(d.get("IP") or b""), bytes(d.get("Mask") or b"")
    v4 = _to4(raw)
    ip = v4 if v4 is not None else raw
    if len(ip) not in (4, 16):
        raise ValueError(f"invalid IPNet address {raw.hex()!r}")
    if len(mask) == 16 and len(ip) == 4:
        mask = mask[12:]
    if len(mask) != len(ip):
        raise ValueError(f"IPNet mask {mask.hex()!r} does not fit address {ip_text(ip)}")
    m = int.from_bytes(mask, "big")
    width = len(mask) * 8
    ones = bin(m).count("1")
    if m != ((1 << width) - 1) ^ ((1 << (width - ones)) - 1):
        raise ValueError(f"IPNet mask {mask.hex()} is not a prefix")
    text, _family = go_ip(ip_text(ip) or "")
    return f"{text}/{ones}"


def result_from_go(d: dict, cni_version: str) -> Result:
    """The Result a Go current.Result dict describes, for `cni_version`.

    Raises ValueError for addresses or masks that are not ones."""
    interfaces = [
        Interface(
            name=i.get("Name") or "",
            mac=i.get("Mac") or "",
            sandbox=i.get("Sandbox") or "",
            mtu=i.get("Mtu") or 0,
            socket_path=i.get("SocketPath") or "",
            pci_id=i.get("PciID") or "",
        )
        for i in d.get("Interfaces") or ()
        if i is not None
    ]
    ips = [
        IPConfig(
            ipnet_text(ip.get("Address") or {}),
            ip_text(bytes(ip.get("Gateway") or b"")),
            ip.get("Interface"),
        )
        for ip in d.get("IPs") or ()
        if ip is not None
    ]
    routes = [
        Route(
            ipnet_text(r.get("Dst") or {}),
            ip_text(bytes(r.get("GW") or b"")),
            mtu=r.get("MTU") or 0,
            advmss=r.get("AdvMSS") or 0,
            priority=r.get("Priority") or 0,
            table=r.get("Table"),
            scope=r.get("Scope"),
        )
        for r in d.get("Routes") or ()
        if r is not None
    ]
    dns = d.get("DNS") or {}
    return Result(
        cni_version,
        interfaces,
        ips,
        routes,
        DNS(
            list(dns.get("Nameservers") or ()),
            dns.get("Domain") or "",
            list(dns.get("Search") or ()),
            list(dns.get("Options") or ()),
        ),
    )
