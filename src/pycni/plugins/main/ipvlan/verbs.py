"""The ipvlan plugin's verbs: the stacked-link story of pkg.sublink with ipvlan's data."""

from __future__ import annotations

from pycni.plugins.main.ipvlan.conf import NetConf, load
from pycni.plugins.pkg import sublink
from pycni.plugins.pkg.netconf import invalid
from pycni.skel import CmdArgs
from pycni.spec.result import Result

KIND = "ipvlan"


def cmd_add(args: CmdArgs) -> Result:
    conf = load(args.conf)
    prev = args.prev_result
    chained_master(conf, prev)
    chained = None
    if not conf.is_layer3:
        if prev is None or not prev.ips:
            raise invalid(
                'ipvlan needs an IPAM plugin ("ipam.type") or, chained, a prevResult with IPs'
            )
        chained = prev
    return sublink.add(args, conf, KIND, conf.info_data(), chained=chained)


def chained_master(conf: NetConf, prev) -> None:
    """Chained without a master: the master is prevResult's one named interface."""
    if conf.master or prev is None:
        return
    if len(prev.interfaces) == 1 and prev.interfaces[0].name:
        conf.master = prev.interfaces[0].name
        return
    raise invalid(
        'chained master failure. PrevResult lacks a single named interface (set "master")'
    )


def cmd_del(args: CmdArgs) -> None:
    sublink.delete_verb(args, load(args.conf, strict=False), KIND)


def cmd_check(args: CmdArgs) -> None:
    conf = load(args.conf)

    def validate(link) -> None:
        sublink.expect_data(link, "mode", conf.mode, "IPVlan mode")
        sublink.expect_data(link, "flags", conf.flag, "IPVlan flag", default="bridge")

    sublink.check_verb(args, conf, KIND, validate)


def cmd_status(args: CmdArgs) -> None:
    sublink.status_verb(args, load(args.conf, strict=False))


def cmd_gc(args: CmdArgs) -> None:
    sublink.gc_verb(args, load(args.conf, strict=False))
