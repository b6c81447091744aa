"""The firewall plugin's verbs: pick the backend, then let it do the work."""

from __future__ import annotations

from pycni.plugins.meta.firewall.conf import NetConf, load
from pycni.plugins.pkg.errors import Failures
from pycni.plugins.pkg.netconf import invalid
from pycni.skel import CmdArgs
from pycni.spec import errors
from pycni.spec.errors import CNIError
from pycni.spec.jsonutil import go_quote
from pycni.spec.validate import config_interface_name_problem

# Backends, the transaction and the result types are imported by the verbs
# that use them: a DEL on the nftables backend parses no prevResult.
TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.spec.result import Result


def backend_of(conf: NetConf) -> str:
    if conf.backend:
        return conf.backend
    from pycni.plugins.meta.firewall.detect import default_backend

    return default_backend()


def _prev(args: CmdArgs) -> Result:
    prev = args.prev_result
    if prev is None:
        raise CNIError(errors.ERR_INTERNAL, "missing prevResult from earlier plugin")
    return prev


def bridge_of(conf: NetConf, prev: Result) -> str:
    """The bridge an isolating ingress policy applies to: the first interface
    of prevResult (the firewall is chained after `bridge`); "" otherwise."""
    if not conf.isolates:
        return ""
    if not prev.interfaces:
        raise CNIError(
            errors.ERR_INTERNAL,
            f"interface needs to be set for ingress policy {go_quote(conf.ingress_policy)}, "
            'make sure to chain "firewall" plugin with "bridge"',
        )
    name = prev.interfaces[0].name
    if not name:
        raise CNIError(errors.ERR_INTERNAL, "got empty bridge name")
    problem = config_interface_name_problem(name)
    if not problem and name[0] in "-!":
        problem = f"it starts with {name[0]!r}"
    if problem:
        raise invalid(
            f"invalid bridge name {go_quote(name)} in prevResult.interfaces[0]: {problem}"
        )
    return name


def _comment(conf: NetConf, args: CmdArgs) -> str:
    from pycni.plugins.meta.firewall.nftables_backend import attachment_comment

    return attachment_comment(conf.name, args.container_id, args.ifname)


def cmd_add(args: CmdArgs) -> Result:
    from pycni.plugins.pkg.transaction import add_transaction

    conf = load(args.conf)
    prev = _prev(args)
    bridge = bridge_of(conf, prev)
    backend = backend_of(conf)
    with add_transaction("firewall ADD") as undo:
        if backend == "nftables":
            from pycni.plugins.meta.firewall import nftables_backend

            nftables_backend.add(conf, prev, bridge, _comment(conf, args))
        elif backend == "iptables":
            from pycni.plugins.meta.firewall import iptables_backend

            iptables_backend.add(conf, prev, bridge, undo)
        else:
            from pycni.plugins.meta.firewall import firewalld, iptables_backend

            firewalld.add(conf, prev, undo)
            if bridge:
                iptables_backend.add_isolation_only(conf, prev, bridge)
    return prev


def cmd_del(args: CmdArgs) -> None:
    """Remove the attachment's rules. Works without prevResult (the nftables
    backend finds the rules by their comment; the others then know no
    addresses), twice, and with the netns gone (nothing here is in it)."""
    conf = load(args.conf)
    backend = backend_of(conf)
    prev = None
    if backend != "nftables":  # nftables rules are found by comment, not address
        try:
            prev = args.prev_result
        except CNIError:
            prev = None  # an unreadable prevResult names no addresses
        if prev is None:
            prev = addresses_in_netns(args.netns, args.ifname)
    failures = Failures()
    if backend == "iptables":
        from pycni.plugins.meta.firewall import iptables_backend

        failures.attempt(iptables_backend.delete, prev)
    elif backend == "firewalld":
        from pycni.plugins.meta.firewall import firewalld

        failures.attempt(firewalld.delete, conf, prev)
    if backend == "nftables" or not conf.backend:
        # with an empty backend the host may have changed since the ADD:
        # the nftables rules are found by comment, cheaply
        from pycni.plugins.meta.firewall import nftables_backend

        failures.attempt(nftables_backend.delete, _comment(conf, args))
    failures.raise_if_any()


def addresses_in_netns(netns: str, ifname: str) -> Result | None:
    """The global addresses of the container interface, as a result: what a
    DEL without prevResult (a runtime that lost its cache, an ADD killed
    half-way) can still find the per-IP rules by. Chained after the
    interface plugin, the firewall's DEL runs before the interface is gone."""
    if not netns:
        return None
    from pycni.kernel.netlink import AF_INET, AF_INET6
    from pycni.plugins.pkg.netns import open_netlink
    from pycni.spec.result import IPConfig, Result

    try:
        nl = open_netlink(netns)
    except CNIError:
        return None
    try:
        index = nl.link_get(ifname).index
        addrs = [*nl.addr_list(index, AF_INET), *nl.addr_list(index, AF_INET6)]
    except OSError:
        return None
    finally:
        nl.close()
    universe = [a for a in addrs if a.scope == 0 and a.address]
    return Result(ips=[IPConfig(a.cidr) for a in universe]) if universe else None


def cmd_check(args: CmdArgs) -> None:
    conf = load(args.conf)
    prev = _prev(args)
    bridge = bridge_of(conf, prev)
    backend = backend_of(conf)
    if backend == "nftables":
        from pycni.plugins.meta.firewall import nftables_backend

        nftables_backend.check(conf, prev, bridge, _comment(conf, args))
    elif backend == "iptables":
        from pycni.plugins.meta.firewall import iptables_backend

        iptables_backend.check(conf, prev)
    else:
        from pycni.plugins.meta.firewall import firewalld

        firewalld.check(conf, prev)


def cmd_gc(args: CmdArgs) -> None:
    """Remove this network's nftables rules of attachments that are no longer
    valid. The iptables rules carry no attachment (they are the reference's)
    and firewalld sources neither, so only nftables rules are collected."""
    conf = load(args.conf)
    valid = args.valid_attachments
    if valid is None or conf.backend not in ("", "nftables"):
        return
    from pycni.plugins.meta.firewall import nftables_backend

    nftables_backend.gc(conf.name, valid)
