"""The egress IFB of an attachment: its name, its alias, finding and
deleting it. All a DEL needs, apart from the shaping and the config
(`shaping`, `conf`, and the tc codec they use, which DEL never loads).
"""

from __future__ import annotations

from pycni.kernel.netlink import LinkNotFound, RtNetlink
from pycni.netfilter.names import format_hash_with_prefix

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.kernel.link import Link

IFB_PREFIX = "bwp"
ALIAS_PREFIX = "pycni bandwidth "
IFALIASZ = 256
IFB_NAME_LEN = 15


def ifb_alias(network: str) -> str:
    """The alias ADD gives the IFBs it creates, by which GC knows them; ""
    when it would not fit the kernel's 255 bytes (those IFBs get none)."""
    alias = ALIAS_PREFIX + network
    return alias if len(alias.encode("utf-8", "surrogateescape")) < IFALIASZ else ""


def ifb_name(network: str, container_id: str) -> str:
    """The egress IFB's name: ("bwp" + hex SHA-512(network + containerID))[:15],
    the reference's utils.MustFormatHashWithPrefix."""
    return format_hash_with_prefix(IFB_NAME_LEN, IFB_PREFIX, network + container_id)


def delete_ifb(host_nl: RtNetlink, name: str) -> bool:
    """Delete the IFB `name` if there is one; False when there was none.
    A link of that name that is not an IFB is left alone."""
    link = host_nl.link_find(name)
    if link is None or link.kind != "ifb":
        return False
    try:
        host_nl.link_del(link)
    except LinkNotFound:
        return False
    return True


def stale_ifbs(host_nl: RtNetlink, network: str, keep: set[str]) -> list[Link]:
    """The IFBs this plugin made for `network` (by their alias) whose name is
    not in `keep`."""
    alias = ifb_alias(network)
    if not alias:
        return []
    return [
        link
        for link in host_nl.link_list()
        if link.kind == "ifb"
        and link.alias == alias
        and link.name.startswith(IFB_PREFIX)
        and link.name not in keep
    ]
