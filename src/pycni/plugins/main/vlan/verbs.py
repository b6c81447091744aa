"""The vlan plugin's verbs: the stacked-link story of pkg.sublink with vlan's data."""

from __future__ import annotations

from pycni.plugins.main.vlan.conf import load
from pycni.plugins.pkg import sublink
from pycni.skel import CmdArgs
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.result import Result

KIND = "vlan"


def cmd_add(args: CmdArgs) -> Result:
    conf = load(args.conf)
    return sublink.add(args, conf, KIND, conf.info_data(), notify=False)


def cmd_del(args: CmdArgs) -> None:
    sublink.delete_verb(args, load(args.conf, for_add=False), KIND)


def cmd_check(args: CmdArgs) -> None:
    conf = load(args.conf, for_add=False)

    def validate(link) -> None:
        vid = link.data.get("id")
        if vid != conf.vlan_id:
            raise CNIError(
                errors.ERR_INTERNAL,
                f"Container vlan {link.name} has VLAN ID {vid}, expected {conf.vlan_id}",
            )
        if conf.mtu and conf.mtu != link.mtu:
            raise CNIError(
                errors.ERR_INTERNAL,
                f"Container vlan {link.name} has MTU {link.mtu}, expected {conf.mtu}",
            )

    sublink.check_verb(args, conf, KIND, validate)


def cmd_status(args: CmdArgs) -> None:
    sublink.status_verb(args, load(args.conf, for_add=False))


def cmd_gc(args: CmdArgs) -> None:
    sublink.gc_verb(args, load(args.conf, for_add=False))
