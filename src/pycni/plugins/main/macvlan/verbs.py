"""The macvlan plugin's verbs: the stacked-link story of pkg.sublink with macvlan's data."""

from __future__ import annotations

from pycni.plugins.main.macvlan.conf import load
from pycni.plugins.pkg import sublink
from pycni.skel import CmdArgs
from pycni.spec.result import Result

KIND = "macvlan"


def cmd_add(args: CmdArgs) -> Result:
    conf = load(args.conf, args.args)
    return sublink.add(args, conf, KIND, conf.info_data(), mac=conf.mac)


def cmd_del(args: CmdArgs) -> None:
    sublink.delete_verb(args, load(args.conf, strict=False), KIND)


def cmd_check(args: CmdArgs) -> None:
    conf = load(args.conf, args.args)

    def validate(link) -> None:
        sublink.expect_data(link, "mode", conf.mode, "macvlan mode")

    sublink.check_verb(args, conf, KIND, validate)


def cmd_status(args: CmdArgs) -> None:
    sublink.status_verb(args, load(args.conf, strict=False))


def cmd_gc(args: CmdArgs) -> None:
    sublink.gc_verb(args, load(args.conf, strict=False))
