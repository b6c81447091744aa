"""static's verbs: ADD answers from the config, CHECK compares with prevResult."""

from __future__ import annotations

from pycni.plugins.ipam.static.conf import load
from pycni.skel import CmdArgs
from pycni.spec.errors import ERR_INTERNAL, ERR_INVALID_NETWORK_CONFIG, CNIError
from pycni.spec.ipnet import go_ip
from pycni.spec.result import DNS, IPConfig, Result


def cmd_add(args: CmdArgs) -> Result:
    cfg = load(args.conf, args.args, args.cni_version)
    return Result(
        ips=[IPConfig(a.cidr, a.gateway) for a in cfg.addresses],
        routes=cfg.routes,
        dns=cfg.dns or DNS(),
    )


def cmd_del(args: CmdArgs) -> None:
    """Nothing was allocated, so there is nothing to release."""


def cmd_check(args: CmdArgs) -> None:
    cfg = load(args.conf, args.args, args.cni_version)
    prev = args.prev_result
    if prev is None:
        raise CNIError(ERR_INVALID_NETWORK_CONFIG, "Required prevResult missing")
    for addr in cfg.addresses:
        for ipc in prev.ips:
            if go_ip(ipc.address.partition("/")[0])[0] != addr.ip:
                continue
            if addr.gateway is None or (ipc.gateway and go_ip(ipc.gateway)[0] == addr.gateway):
                break
            raise CNIError(
                ERR_INTERNAL,
                f"static: Failed to match addr {addr.ip} on interface {args.ifname}",
                f"prevResult has gateway {ipc.gateway or 'none'}, the config {addr.gateway}",
            )
