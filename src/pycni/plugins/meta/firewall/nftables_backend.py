"""The nftables backend (pycni's own; the reference has none).

The iptables backend's design in one table, `inet cni_firewall` (comment
"CNI firewall plugin"):

    chain forward {              # type filter hook forward priority 0; policy accept
        jump isolation_stage_1   # only once an ingress policy needed it
        jump admin               # "CNI firewall plugin admin overrides"
        ip daddr <ip> ct state established,related accept   # per container address,
        ip saddr <ip> accept                                # comment <attachment>
    }
    chain admin { }              # the admin's overrides, never touched
    chain isolation_stage_1 {    # per bridge of a same-bridge/isolated network
        iifname <br> oifname != <br> jump isolation_stage_2
        iifname <br> oifname <br> drop          # isolated only
    }
    chain isolation_stage_2 { oifname <br> drop }

Attachment comment: `<network>:<containerID>:<ifname>` (none of the three
can contain ':'); a part that would make the comment longer than the 128
bytes nft keeps is replaced by "#" + a SHA-256 prefix of it (a network
name is 64 bytes at most as is). DEL deletes the rules with the
attachment's comment, so it needs no prevResult; GC deletes the rules whose
comment starts with this network's part and names an attachment that is not
in `cni.dev/valid-attachments`. An ADD replaces the attachment's earlier
rules, and is one transaction: it happens whole or not at all.

The forward chain is created without a policy attribute, so it starts as
`accept` and an admin who set `policy drop` on it keeps it across ADDs:
with that policy, only container traffic (and what the admin chain
accepts) is forwarded. An `accept` in this table cannot override a `drop`
in another table's forward chain (every base chain of a hook must accept a
packet); `drop`s, the isolation rules and the admin chain's drops, always
take effect. Isolation rules are identified by their comments and never
removed, as in the iptables backend; regular chains return at their end, so
the iptables backend's explicit RETURN rules have no counterpart.
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.netfilter import nftables as nft
from pycni.netfilter.names import NFT_COMMENT_MAX
from pycni.plugins.pkg.errors import warn
from pycni.spec import errors
from pycni.spec.errors import CNIError

# nfexpr (rule expressions, with spec.ipnet) is imported by the functions
# that build rules: a DEL lists rules and deletes them by handle only.

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.meta.firewall.conf import NetConf
    from pycni.spec.result import Result

FAMILY = "inet"
TABLE = "cni_firewall"
TABLE_COMMENT = "CNI firewall plugin"
FORWARD = "forward"
ADMIN = "admin"
STAGE_1 = "isolation_stage_1"
STAGE_2 = "isolation_stage_2"
ADMIN_COMMENT = "CNI firewall plugin admin overrides"
ISOLATION_COMMENT = "CNI firewall plugin rules (ingressPolicy)"
COMMENT_MAX = NFT_COMMENT_MAX
NETWORK_PART_MAX = 64
_RETRIES = 3
#: (offset, length) of an address load in the network header -> (field, size)
_ADDR_FIELDS = {
    (12, 4): ("saddr", 4),
    (16, 4): ("daddr", 4),
    (8, 16): ("saddr", 16),
    (24, 16): ("daddr", 16),
}


# --- comments ------------------------------------------------------------------------------


def _hashed(text: str) -> str:
    import hashlib

    return "#" + hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def network_part(network: str) -> str:
    """The part of an attachment comment that names the network."""
    if len(network.encode("utf-8", "surrogateescape")) <= NETWORK_PART_MAX:
        return network
    return _hashed(network)


def attachment_comment(network: str, container_id: str, ifname: str) -> str:
    """The comment of an attachment's rules (see the module docstring)."""
    net = network_part(network)
    att = f"{container_id}:{ifname}"
    if len(f"{net}:{att}".encode("utf-8", "surrogateescape")) > COMMENT_MAX:
        att = _hashed(att)
    return f"{net}:{att}"


def stage1_comment(policy: str, bridge: str) -> str:
    return f"ingressPolicy {policy}: from bridge {bridge} to other interfaces"


def stage1_drop_comment(bridge: str) -> str:
    return f"ingressPolicy isolated: within bridge {bridge}"


def stage2_comment(bridge: str) -> str:
    return f"ingressPolicy: to bridge {bridge}"


# --- rules ---------------------------------------------------------------------------------


def ip_rules(ip: str) -> list[list[bytes]]:
    """The two forward rules of one container address."""
    from pycni.netfilter import nfexpr as x

    return [
        [*x.addr(FAMILY, "daddr", ip), *x.ct_state("established", "related"), *x.verdict("accept")],
        [*x.addr(FAMILY, "saddr", ip), *x.verdict("accept")],
    ]


def isolation_rules(bridge: str, policy: str) -> list[tuple[str, str, list[bytes]]]:
    """(chain, comment, expressions) of the isolation of one bridge."""
    from pycni.netfilter import nfexpr as x

    rules = [
        (
            STAGE_1,
            stage1_comment(policy, bridge),
            [*x.iifname(bridge), *x.oifname(bridge, neq=True), *x.verdict("jump", STAGE_2)],
        )
    ]
    if policy == "isolated":
        rules.append(
            (
                STAGE_1,
                stage1_drop_comment(bridge),
                [*x.iifname(bridge), *x.oifname(bridge), *x.verdict("drop")],
            )
        )
    rules.append((STAGE_2, stage2_comment(bridge), [*x.oifname(bridge), *x.verdict("drop")]))
    return rules


def _error(what: str, err: BaseException) -> CNIError:
    return CNIError(errors.ERR_INTERNAL, f"{what}: {err}")


def _client(what: str) -> nft.Nft:
    try:
        return nft.Nft()
    except OSError as err:
        raise _error(what, err) from err


# --- ADD ---


def add(conf: NetConf, result: Result, bridge: str, comment: str) -> None:
    """One transaction: table, chains, jumps, the attachment's rules
    (replacing earlier ones) and the bridge's isolation rules. Nothing
    without addresses (as the iptables backend, per family)."""
    if not result.ips:
        return
    with _client("firewall ADD") as c:
        for attempt in range(_RETRIES):
            try:
                _add(c, conf, result, bridge, comment)
                break
            except nft.NftError as err:
                # an old rule of this attachment deleted meanwhile: list again
                if not err.not_found or attempt == _RETRIES - 1:
                    raise _error("firewall ADD (nftables)", err) from err
            except (OSError, ValueError) as err:
                raise _error("firewall ADD (nftables)", err) from err
        _dedupe(c)


def _add(c: nft.Nft, conf: NetConf, result: Result, bridge: str, comment: str) -> None:
    from pycni.netfilter import nfexpr as x

    forward = c.rules(FAMILY, TABLE, FORWARD)
    b = c.batch()
    # re-adding existing chains would make this process's exit wait for an
    # RCU grace period; a chain deleted meanwhile fails the commit (ENOENT),
    # and the caller's retry lists again
    b.known_chains(FAMILY, TABLE)
    b.add_table(FAMILY, TABLE, comment=TABLE_COMMENT)
    b.add_chain(FAMILY, TABLE, FORWARD, type="filter", hook="forward", priority=0)
    b.add_chain(FAMILY, TABLE, ADMIN)
    if not any(r.comment == ADMIN_COMMENT for r in forward):
        b.add_rule(FAMILY, TABLE, FORWARD, x.verdict("jump", ADMIN), ADMIN_COMMENT, insert=True)
    b.delete_rules([r for r in forward if r.comment == comment])
    for ipc in result.ips:
        for rule in ip_rules(ipc.ip):
            b.add_rule(FAMILY, TABLE, FORWARD, rule, comment)
    if conf.isolates:
        _add_isolation(c, b, forward, bridge, conf.ingress_policy)
    step("firewall.add.nftables")
    b.commit()


def _dedupe(c: nft.Nft) -> None:
    """Delete second copies of the shared rules (jumps, isolation rules).

    "Add it unless present" is read-then-write: two first ADDs running at
    once both add the admin jump. Every ADD afterwards keeps the oldest copy
    of each and deletes the others; concurrent ADDs pick the same one, and a
    copy someone else deleted first is no error."""
    seen: set[tuple[str, str]] = set()
    extra = []
    try:
        rules = c.rules(FAMILY, TABLE)
    except OSError as err:
        warn(f"firewall: could not list the rules for duplicates: {err}")
        return
    # the oldest copy (lowest handle) is the one every ADD keeps: list order
    # changes as copies are inserted at the top, handles only grow
    handles: set[int] = set()
    for r in sorted(rules, key=lambda r: r.handle):
        if r.handle in handles:
            continue  # one rule listed twice is no copy
        handles.add(r.handle)
        if r.chain in (STAGE_1, STAGE_2) or r.comment in (ADMIN_COMMENT, ISOLATION_COMMENT):
            key = (r.chain, r.comment)
            if key in seen:
                extra.append(r)
            seen.add(key)
    for r in extra:
        b = c.batch()
        b.delete_rules([r])
        try:
            b.commit()
        except nft.NftError as err:
            if not err.not_found:  # a harmless duplicate stays: the ADD succeeded
                warn(f"firewall: could not delete a duplicate rule: {err}")


def _add_isolation(c: nft.Nft, b: nft.Batch, forward: list, bridge: str, policy: str) -> None:
    from pycni.netfilter import nfexpr as x

    present = {(r.chain, r.comment) for r in c.rules(FAMILY, TABLE)}
    b.add_chain(FAMILY, TABLE, STAGE_1)
    b.add_chain(FAMILY, TABLE, STAGE_2)
    for chain, comment, exprs in isolation_rules(bridge, policy):
        if (chain, comment) not in present:
            b.add_rule(FAMILY, TABLE, chain, exprs, comment)
    if not any(r.comment == ISOLATION_COMMENT for r in forward):
        jump = x.verdict("jump", STAGE_1)
        b.add_rule(FAMILY, TABLE, FORWARD, jump, ISOLATION_COMMENT, insert=True)


# --- DEL and GC ----------------------------------------------------------------------------


def delete(comment: str) -> None:
    """Delete the attachment's rules; nothing to do without the table, or
    without nf_tables in the kernel."""
    _delete_matching(lambda c: c == comment, "firewall DEL")


def gc(network: str, valid: list[tuple[str, str]]) -> None:
    """Delete this network's attachment rules not in `valid`."""
    keep = {attachment_comment(network, cid, ifname) for cid, ifname in valid}
    prefix = network_part(network) + ":"
    _delete_matching(lambda c: c.startswith(prefix) and c not in keep, "firewall GC")


def _delete_matching(stale, what: str) -> None:
    try:
        c = nft.Nft()
    except OSError:
        return  # no nf_tables: no rules of ours
    with c:
        for attempt in range(_RETRIES):
            try:
                rules = [r for r in c.rules(FAMILY, TABLE, FORWARD) if stale(r.comment)]
                if not rules:
                    return
                b = c.batch()
                b.delete_rules(rules)
                step("firewall.del.nftables")
                b.commit()
                return
            except nft.NftError as err:
                # a rule deleted meanwhile (a concurrent DEL or GC): list again
                if not err.not_found or attempt == _RETRIES - 1:
                    raise _error(f"{what} (nftables)", err) from err


# --- CHECK ---


def check(conf: NetConf, result: Result, bridge: str, comment: str) -> None:
    """The chains, both jumps, the attachment's rules for every address of
    prevResult, and the bridge's isolation rules."""
    with _client("firewall CHECK") as c:
        try:
            problem = _check(c, conf, result, bridge, comment)
        except OSError as err:
            raise _error("firewall CHECK (nftables)", err) from err
    if problem:
        raise CNIError(errors.ERR_INTERNAL, problem)


def _check(c: nft.Nft, conf: NetConf, result: Result, bridge: str, comment: str) -> str:
    if not result.ips:
        return ""
    for chain in (FORWARD, ADMIN):
        if not c.chain_exists(FAMILY, TABLE, chain):
            return f"expected chain {chain} in table {FAMILY} {TABLE} not found"
    rules = c.rules(FAMILY, TABLE)
    forward = [r for r in rules if r.chain == FORWARD]
    if not any(r.comment == ADMIN_COMMENT and _jumps_to(r, ADMIN) for r in forward):
        return f"expected rule 'jump {ADMIN}' in chain {FORWARD} not found"
    mine = [rule_match(r) for r in forward if r.comment == comment]
    for ipc in result.ips:
        for wanted in (("daddr", ipc.ip, True), ("saddr", ipc.ip, False)):
            if wanted not in mine:
                field, ip, ct = wanted
                rule = f"ip{'6' if ipc.family == 6 else ''} {field} {ip}"
                rule += " ct state established,related accept" if ct else " accept"
                return f"expected rule {rule!r} (comment {comment!r}) not found"
    if conf.isolates:
        if not any(r.comment == ISOLATION_COMMENT and _jumps_to(r, STAGE_1) for r in forward):
            return f"expected rule 'jump {STAGE_1}' in chain {FORWARD} not found"
        present = {(r.chain, r.comment) for r in rules}
        for chain, rule_comment, _exprs in isolation_rules(bridge, conf.ingress_policy):
            if (chain, rule_comment) not in present:
                return f"expected rule {rule_comment!r} in chain {chain} not found"
    return ""


def _verdict(rule: nft.Rule) -> tuple[int, str] | None:
    """The rule's final verdict (code, chain) from its immediate expression."""
    from pycni.kernel.netlink import iter_attrs

    for name, data in reversed(rule.exprs):
        if name != "immediate" or 2 not in data:
            continue
        for t, verdict in iter_attrs(data[2]):
            if t & 0x3FFF != 2:  # NFTA_DATA_VERDICT (not a value loaded into a register)
                continue
            code, chain = None, ""
            for at, av in iter_attrs(verdict):
                if at & 0x3FFF == 1:
                    code = int.from_bytes(bytes(av), "big", signed=True)
                elif at & 0x3FFF == 2:
                    chain = bytes(av).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if code is not None:
                return code, chain
    return None


def _jumps_to(rule: nft.Rule, chain: str) -> bool:
    from pycni.netfilter import nfexpr as x

    return _verdict(rule) == (x.NFT_JUMP, chain)


def rule_match(rule: nft.Rule) -> tuple[str, str, bool] | None:
    """(field, ip, with ct state) of a per-address rule that accepts, else None."""
    from pycni.kernel.netlink import iter_attrs
    from pycni.netfilter import nfexpr as x
    from pycni.spec.ipnet import format_ip6

    if _verdict(rule) != (x.NF_ACCEPT, ""):
        return None
    found = None
    has_ct = False
    pending: tuple[str, int] | None = None
    for name, data in rule.exprs:
        if name == "payload" and data.get(2) == x.BASE_NETWORK.to_bytes(4, "big"):
            offset = int.from_bytes(data.get(3, b""), "big")
            length = int.from_bytes(data.get(4, b""), "big")
            pending = _ADDR_FIELDS.get((offset, length))
        elif name == "cmp" and pending is not None:
            raw = b"".join(bytes(v) for _t, v in iter_attrs(data.get(3, b"")))
            field, size = pending
            if len(raw) == size:
                ip = ".".join(str(b) for b in raw) if size == 4 else format_ip6(raw)
                found = (field, ip)
            pending = None
        elif name == "ct":
            has_ct = True
    if found is None:
        return None
    return found[0], found[1], has_ct
