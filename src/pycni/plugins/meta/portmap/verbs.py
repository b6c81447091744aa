"""The portmap plugin's verbs.

The iptables backend (`ipt_backend`, `netfilter.iptables`) is imported
where it runs: on the default nftables path, and in a DEL that finds no
iptables chain of this container, it is never loaded.
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.netfilter import nftables as nft
from pycni.netfilter.host import legacy_tables
from pycni.plugins.meta.portmap import nft_backend
from pycni.plugins.meta.portmap.conf import PortMapConf, check_host_ips, dnat_chain, load
from pycni.plugins.pkg.errors import Failures, warn
from pycni.plugins.pkg.transaction import Undo, add_transaction
from pycni.skel import CmdArgs
from pycni.spec.errors import ERR_INTERNAL, CNIError
from pycni.spec.result import Result

_NAT_FAMILY = {4: "ip", 6: "ip6"}


def _default_backend() -> str:
    return "nftables" if nft.available() else "iptables"


def _load(args: CmdArgs) -> PortMapConf:
    return load(args.conf, args.ifname, args.prev_result, _default_backend)


def _internal(what: str, err: BaseException) -> CNIError:
    return CNIError(ERR_INTERNAL, f"{what}: {err}")


# --- ADD ---


def cmd_add(args: CmdArgs) -> Result:
    conf = _load(args)
    if conf.prev is None:
        raise CNIError(ERR_INTERNAL, "must be called as chained plugin")
    if not conf.mappings:
        return conf.prev
    check_host_ips(conf)
    if conf.backend == "nftables":
        nft_backend.check_conditions(conf)  # both families, before anything is installed
    with add_transaction("portmap ADD") as undo:
        for family in (4, 6):
            ip = conf.container_ips.get(family)
            if ip is None:
                continue
            if family == 4 and conf.snat:
                _route_localnet(ip, undo)
            _forward(conf, family, ip, args.container_id, undo)
            _flush_udp_conntrack(conf, family)
    return conf.prev


def _forward(conf: PortMapConf, family: int, ip: str, cid: str, undo: Undo) -> None:
    step("portmap.add.rules")
    if conf.backend == "nftables":
        undo.push("delete nftables port mappings", _nft_unforward, cid)
        try:
            with nft.Nft() as c:
                nft_backend.forward(c, conf, family, ip, cid)
        except OSError as err:
            raise _internal("unable to set up nftables rules for port mappings", err)
    else:
        from pycni.netfilter.iptables import IptablesError
        from pycni.plugins.meta.portmap import ipt_backend

        undo.push("delete iptables port mappings", ipt_backend.unforward, family, conf.name, cid)
        try:
            ipt_backend.forward(conf, family, ip, cid)
        except IptablesError as err:
            raise _internal("unable to set up iptables rules for port mappings", err)


def _nft_unforward(cid: str) -> None:
    with nft.Nft() as c:
        nft_backend.unforward(c, cid)


def _route_localnet(container_ip: str, undo: Undo) -> None:
    """route_localnet=1 on the host interface that routes to the container,
    so 127.0.0.1:<hostPort> can be DNATed out of it (restored on rollback)."""
    from pycni.kernel import sysctl
    from pycni.kernel.netlink import RtNetlink

    try:
        with RtNetlink() as nl:
            route = nl.route_get(container_ip.partition("/")[0])
            name = nl.link_get(index=route.oif).name if route.oif else ""
    except OSError:
        return  # as the reference: no routable interface, nothing to enable
    if not name:
        return
    key = f"net/ipv4/conf/{name}/route_localnet"
    step("portmap.add.route-localnet")
    try:
        old = sysctl.set(key, "1")
    except OSError as err:
        raise _internal("unable to enable route_localnet", err)
    if old.strip() != "1":
        undo.push(f"restore {key}", sysctl.set, key, old)


def _flush_udp_conntrack(conf: PortMapConf, family: int) -> None:
    ports = sorted({m.host_port for m in conf.mappings if m.protocol == "udp"})
    if not ports:
        return
    from pycni.netfilter.conntrack import delete_for_dst_port

    for port in ports:
        try:
            delete_for_dst_port(family, port)
        except OSError as err:
            warn(f"failed to delete stale UDP conntrack entries for port {port}: {err}")


# --- DEL ---


def cmd_del(args: CmdArgs) -> None:
    """Both backends, with or without mappings or prevResult; iptables only
    where a chain of this container exists (found without a process)."""
    conf_name = _load_name(args)
    failures = Failures()
    families: list[int] = []
    chain = dnat_chain(conf_name, args.container_id)
    try:
        with nft.Nft() as c:
            step("portmap.del.nft")
            nft_backend.unforward(c, args.container_id)
            families = [f for f in (4, 6) if _ipt_may_hold(c, f, chain)]
    except OSError as err:
        if not _nft_missing(err):
            failures.add(_internal("error deleting nftables rules", err))
        families = [4, 6]
    if families:
        from pycni.netfilter.iptables import IptablesError
        from pycni.plugins.meta.portmap import ipt_backend

        for family in families:
            try:
                step("portmap.del.iptables")
                ipt_backend.unforward(family, conf_name, args.container_id)
            except IptablesError as err:
                failures.add(_internal(f"could not teardown ipv{family} dnat", err))
    failures.raise_if_any()


def _load_name(args: CmdArgs) -> str:
    """DEL validates the config as ADD does, but needs only the name."""
    return _load(args).name


def _ipt_may_hold(c: nft.Nft, family: int, chain: str) -> bool:
    if "nat" in legacy_tables(family):
        return True
    return c.chain_exists(_NAT_FAMILY[family], "nat", chain)


def _nft_missing(err: OSError) -> bool:
    import errno

    return err.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT)


# --- CHECK, GC, STATUS ---


def cmd_check(args: CmdArgs) -> None:
    conf = _load(args)
    if conf.prev is None:
        raise CNIError(ERR_INTERNAL, "Required prevResult missing")
    if not conf.mappings:
        return
    failed: tuple[type[Exception], ...] = (OSError,)
    if conf.backend != "nftables":
        from pycni.netfilter.iptables import IptablesError
        from pycni.plugins.meta.portmap import ipt_backend

        failed = (OSError, IptablesError)
    for family, ip in sorted(conf.container_ips.items()):
        try:
            if conf.backend == "nftables":
                with nft.Nft() as c:
                    problem = nft_backend.check(c, conf, family, args.container_id)
            else:
                problem = ipt_backend.check(conf, family, ip, args.container_id)
        except failed as err:
            raise _internal(f"could not check ipv{family} port mappings", err)
        if problem:
            raise CNIError(ERR_INTERNAL, f"could not check ipv{family} dnat: {problem}")


def cmd_gc(args: CmdArgs) -> None:
    """iptables chains name their network and container, so stale ones can
    be told apart; nftables rules carry only the container ID, which other
    networks' attachments may share, so they are left to DEL."""
    conf = _load(args)
    attachments = args.valid_attachments
    if attachments is None:
        return
    valid = {cid for cid, _ in attachments}
    failures = Failures()
    try:
        with nft.Nft() as c:
            families = [
                f
                for f in (4, 6)
                if "nat" in legacy_tables(f) or c.table_exists(_NAT_FAMILY[f], "nat")
            ]
    except OSError:
        families = []
    if families:
        from pycni.netfilter.iptables import IptablesError
        from pycni.plugins.meta.portmap import ipt_backend

        for family in families:
            try:
                ipt_backend.gc(family, conf.name, valid)
            except IptablesError as err:
                failures.add(_internal("could not garbage-collect port mappings", err))
    failures.raise_if_any()


def cmd_status(args: CmdArgs) -> None:
    _load(args)
