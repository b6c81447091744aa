#!/usr/bin/env python3
"""ifalias: a complete CNI plugin in one page, written with pycni's SDK.

It labels the container's interface with an alias (what `ip link` shows as
"alias"), so an operator can tell which container and network an interface
belongs to. Chain it after a plugin that creates the interface:

    {"cniVersion": "1.1.0", "name": "mynet", "plugins": [
        {"type": "bridge", ...},
        {"type": "ifalias", "alias": "optional fixed text"}]}

ADD sets the alias and passes the previous result through; CHECK verifies it;
DEL removes it and succeeds even when the namespace or interface is gone.
"""

from __future__ import annotations

from pycni.skel import CmdArgs, plugin_main
from pycni.spec.errors import CNIError
from pycni.spec.result import Interface, Result


def wanted_alias(args: CmdArgs) -> str:
    alias = args.conf.get("alias", f"{args.conf['name']}/{args.container_id}")
    if not isinstance(alias, str) or len(alias.encode()) > 128:
        raise CNIError(7, "invalid alias: must be a string of at most 128 bytes", repr(alias))
    return alias


def cmd_add(args: CmdArgs) -> Result:
    from pycni.kernel.netlink import RtNetlink

    alias = wanted_alias(args)
    with RtNetlink(netns=args.netns) as nl:
        link = nl.link_find(args.ifname)
        if link is None:
            raise CNIError(7, f"interface {args.ifname} not found in netns {args.netns}")
        nl.link_set(link.index, alias=alias)
    # Pass the previous result through, as the spec requires of chained plugins.
    return args.prev_result or Result(
        args.cni_version, interfaces=[Interface(args.ifname, link.mac, args.netns)]
    )


def cmd_check(args: CmdArgs) -> None:
    from pycni.kernel.netlink import RtNetlink

    with RtNetlink(netns=args.netns) as nl:
        link = nl.link_find(args.ifname)
    if link is None or link.alias != wanted_alias(args):
        raise CNIError(7, f"interface {args.ifname} does not carry the expected alias")


def cmd_del(args: CmdArgs) -> None:
    from pycni.kernel.netlink import NetlinkError, RtNetlink

    if not args.netns:
        return  # nothing we own outside the namespace
    try:
        with RtNetlink(netns=args.netns) as nl:
            link = nl.link_find(args.ifname)
            if link is not None:
                nl.link_set(link.index, alias="")
    except (FileNotFoundError, NetlinkError):
        pass  # namespace or interface already gone: DEL succeeds


def main() -> None:
    plugin_main(add=cmd_add, check=cmd_check, delete=cmd_del, about="ifalias example plugin")


if __name__ == "__main__":
    main()
