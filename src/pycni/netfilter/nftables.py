"""Our nf_tables client: NETLINK_NETFILTER, batched transactions, listing.

A `Batch` holds the messages of one transaction between
NFNL_MSG_BATCH_BEGIN and NFNL_MSG_BATCH_END; the kernel applies all of them
or none. Every message asks for an ack, and the kernel has answered all of
them by the time send() returns (nfnetlink processes a batch in the
sender's context), so the answers are drained without blocking; an error
names the message that failed (its operation and objects) and carries the
kernel's extended-ack text when there is one.

Comments are rule/chain/table userdata in libnftnl's TLV form (type 0,
length, NUL-terminated text), which is what `nft` writes and shows.
"""

from __future__ import annotations

import _socket as socket
import errno as _errno
import os
import struct

from pycni.kernel.netlink import (
    NETLINK_CAP_ACK,
    NETLINK_EXT_ACK,
    NLA_F_NESTED,
    NLM_F_ACK,
    NLM_F_ACK_TLVS,
    NLM_F_APPEND,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    SOL_NETLINK,
    iter_attrs,
    nla,
    nla_str,
)

NETLINK_NETFILTER = 12
MAX_DUMP_ATTEMPTS = 5
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN = 16
NFNL_MSG_BATCH_END = 17

NFT_MSG_NEWTABLE = 0
NFT_MSG_GETTABLE = 1
NFT_MSG_DELTABLE = 2
NFT_MSG_NEWCHAIN = 3
NFT_MSG_GETCHAIN = 4
NFT_MSG_DELCHAIN = 5
NFT_MSG_NEWRULE = 6
NFT_MSG_GETRULE = 7
NFT_MSG_DELRULE = 8

NFTA_TABLE_NAME = 1
NFTA_TABLE_FLAGS = 2
NFTA_TABLE_USERDATA = 6
NFTA_CHAIN_TABLE = 1
NFTA_CHAIN_HANDLE = 2
NFTA_CHAIN_NAME = 3
NFTA_CHAIN_HOOK = 4
NFTA_CHAIN_POLICY = 5
NFTA_CHAIN_TYPE = 7
NFTA_CHAIN_USERDATA = 12
NFTA_HOOK_HOOKNUM = 1
NFTA_HOOK_PRIORITY = 2
NFTA_RULE_TABLE = 1
NFTA_RULE_CHAIN = 2
NFTA_RULE_HANDLE = 3
NFTA_RULE_EXPRESSIONS = 4
NFTA_RULE_POSITION = 6
NFTA_RULE_USERDATA = 7
NFTA_LIST_ELEM = 1
NFTA_EXPR_NAME = 1
NFTA_EXPR_DATA = 2

FAMILIES = {"inet": 1, "ip": 2, "arp": 3, "netdev": 5, "bridge": 7, "ip6": 10}
FAMILY_NAMES = {v: k for k, v in FAMILIES.items()}
HOOKS = {
    "prerouting": 0,
    "input": 1,
    "forward": 2,
    "output": 3,
    "postrouting": 4,
    "ingress": 0,
}
POLICIES = {"drop": 0, "accept": 1}

_HDR = struct.Struct("=IHHII")
_GEN = struct.Struct("=BBH")  # nfgenmsg: family, version, res_id (big-endian)
_BE32 = struct.Struct(">I")
_BE32S = struct.Struct(">i")
_BE64 = struct.Struct(">Q")
_I32 = struct.Struct("=i")
_U32 = struct.Struct("=I")

_NAMES = {
    NFT_MSG_NEWTABLE: "add table",
    NFT_MSG_DELTABLE: "delete table",
    NFT_MSG_NEWCHAIN: "add chain",
    NFT_MSG_DELCHAIN: "delete chain",
    NFT_MSG_NEWRULE: "add rule",
    NFT_MSG_DELRULE: "delete rule",
}
# Messages whose commit leaves objects for the kernel to free after an RCU
# grace period (see `_release_elsewhere`).
_DELETES = frozenset((NFT_MSG_DELTABLE, NFT_MSG_DELCHAIN, NFT_MSG_DELRULE))
_HINTS = {
    _errno.ENOENT: "no such table, chain or rule",
    _errno.EEXIST: "already exists",
    _errno.EBUSY: "in use",
    _errno.EOPNOTSUPP: "not supported by this kernel",
    _errno.EPROTONOSUPPORT: "nf_tables is not available in this kernel",
    _errno.EPERM: "not permitted (needs CAP_NET_ADMIN)",
}


class NftError(OSError):
    """A kernel answer other than success; `.op` is what was attempted."""

    def __init__(self, err: int, op: str, ext: str = "") -> None:
        self.op = op
        self.ext = ext
        super().__init__(err, self._text(err, op, ext))

    @staticmethod
    def _text(err: int, op: str, ext: str) -> str:
        what = ext or _HINTS.get(err) or os.strerror(err)
        return f"nftables: {op}: {what}" if op else f"nftables: {what}"

    def __str__(self) -> str:
        return str(self.strerror)

    def __reduce__(self):
        return (type(self), (self.errno, self.op, self.ext))

    @property
    def not_found(self) -> bool:
        return self.errno == _errno.ENOENT


def udata_comment(text: str) -> bytes:
    """libnftnl's userdata TLV for a comment: type 0, length, text + NUL."""
    raw = text.encode("utf-8", "surrogateescape") + b"\0"
    if len(raw) > 255:
        raise ValueError(f"comment too long for nftables: {text!r}")
    return bytes((0, len(raw))) + raw


def parse_comment(udata) -> str:
    """The comment TLV of a userdata blob ('' when there is none)."""
    data = bytes(udata)
    off = 0
    while off + 2 <= len(data):
        t, ln = data[off], data[off + 1]
        value = data[off + 2 : off + 2 + ln]
        if t == 0:
            return value.rstrip(b"\0").decode("utf-8", "surrogateescape")
        off += 2 + ln
    return ""


def _str(mv) -> str:
    return bytes(mv).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


class Rule:
    """A listed rule: where it is, its handle, comment and expressions
    ([(name, {attr: raw bytes})])."""

    __slots__ = ("chain", "comment", "exprs", "family", "handle", "table")

    def __init__(self, family: str, table: str, chain: str, handle: int, comment: str, exprs):
        self.family = family
        self.table = table
        self.chain = chain
        self.handle = handle
        self.comment = comment
        self.exprs = exprs

    def __repr__(self) -> str:
        return (
            f"Rule({self.family} {self.table} {self.chain} handle {self.handle} {self.comment!r})"
        )


class Chain:
    """A listed chain; hook/priority/type are None for a regular chain."""

    __slots__ = ("comment", "family", "hook", "name", "policy", "priority", "table", "type")

    def __init__(self, family: str, table: str, name: str) -> None:
        self.family = family
        self.table = table
        self.name = name
        self.hook: int | None = None
        self.priority: int | None = None
        self.type: str | None = None
        self.policy: int | None = None
        self.comment = ""


def _family(name: str) -> int:
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown nftables family {name!r}") from None


def _check_name(kind: str, name: str) -> bytes:
    """A table/chain name as an attribute payload; the kernel's limit is 256 bytes."""
    if not isinstance(name, str) or not name or "\0" in name:
        raise ValueError(f"invalid nftables {kind} name {name!r}")
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) > 255:
        raise ValueError(f"nftables {kind} name too long: {name!r}")
    return raw


def _name_attr(atype: int, kind: str, name: str) -> bytes:
    return nla(atype, _check_name(kind, name) + b"\0")


def _expressions(exprs) -> bytes:
    return nla(NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, b"".join(exprs))


class Batch:
    """One transaction: add/flush/delete calls queue messages, commit() sends them."""

    def __init__(self, client: Nft) -> None:
        self._client = client
        self._msgs: list[tuple[int, int, int, bytes, str]] = []
        self._known: dict[tuple[str, str, str], Chain] = {}

    def known_chains(self, family: str, table: str) -> None:
        """Leave out `add_chain` of chains that exist now as asked for (same
        kind, hook, type and priority): re-adding an existing chain is an
        update, whose clean-up makes the next close of any netfilter socket
        wait for an RCU grace period (10-40 ms). If one is deleted meanwhile,
        the commit fails with ENOENT (see `Nft.commit_retry`)."""
        for ch in self._client.chains(family, table):
            self._known[(family, table, ch.name)] = ch

    def _exists_as(self, family: str, table: str, chain: str, hook, type, priority) -> bool:
        ch = self._known.get((family, table, chain))
        if ch is None:
            return False
        if hook is None:
            return ch.hook is None
        return (
            ch.hook == HOOKS[hook]
            and ch.type == (type or "filter")
            and ch.priority == (priority or 0)
        )

    def __len__(self) -> int:
        return len(self._msgs)

    def _add(self, msg: int, flags: int, family: str, payload: bytes, op: str) -> None:
        self._msgs.append((msg, flags, _family(family), payload, op))

    def add_table(self, family: str, table: str, comment: str | None = None) -> None:
        """`nft add table`: created if missing, left alone if present."""
        attrs = _name_attr(NFTA_TABLE_NAME, "table", table) + nla(NFTA_TABLE_FLAGS, b"\0" * 4)
        if comment:
            attrs += nla(NFTA_TABLE_USERDATA, udata_comment(comment))
        self._add(NFT_MSG_NEWTABLE, NLM_F_CREATE, family, attrs, f"add table {family} {table}")

    def delete_table(self, family: str, table: str) -> None:
        attrs = _name_attr(NFTA_TABLE_NAME, "table", table)
        self._add(NFT_MSG_DELTABLE, 0, family, attrs, f"delete table {family} {table}")

    def add_chain(
        self,
        family: str,
        table: str,
        chain: str,
        *,
        type: str | None = None,
        hook: str | None = None,
        priority: int | None = None,
        policy: str | None = None,
        comment: str | None = None,
        exclusive: bool = False,
    ) -> None:
        """`nft add chain` (`create chain` if `exclusive`: fail when it exists);
        a base chain when `hook` is given (type defaults to filter)."""
        if not exclusive and self._exists_as(family, table, chain, hook, type, priority):
            return
        attrs = _name_attr(NFTA_CHAIN_TABLE, "table", table)
        attrs += _name_attr(NFTA_CHAIN_NAME, "chain", chain)
        if hook is not None:
            if hook not in HOOKS:
                raise ValueError(f"unknown nftables hook {hook!r}")
            attrs += nla_str(NFTA_CHAIN_TYPE, type or "filter")
            attrs += nla(
                NFTA_CHAIN_HOOK | NLA_F_NESTED,
                nla(NFTA_HOOK_HOOKNUM, _BE32.pack(HOOKS[hook]))
                + nla(NFTA_HOOK_PRIORITY, _BE32S.pack(priority or 0)),
            )
            if policy is not None:
                attrs += nla(NFTA_CHAIN_POLICY, _BE32.pack(POLICIES[policy]))
        if comment:
            attrs += nla(NFTA_CHAIN_USERDATA, udata_comment(comment))
        flags = NLM_F_CREATE | (NLM_F_EXCL if exclusive else 0)
        verb = "create" if exclusive else "add"
        self._add(NFT_MSG_NEWCHAIN, flags, family, attrs, f"{verb} chain {family} {table} {chain}")

    def flush_chain(self, family: str, table: str, chain: str) -> None:
        attrs = _name_attr(NFTA_RULE_TABLE, "table", table)
        attrs += _name_attr(NFTA_RULE_CHAIN, "chain", chain)
        self._add(NFT_MSG_DELRULE, 0, family, attrs, f"flush chain {family} {table} {chain}")

    def delete_chain(self, family: str, table: str, chain: str) -> None:
        attrs = _name_attr(NFTA_CHAIN_TABLE, "table", table)
        attrs += _name_attr(NFTA_CHAIN_NAME, "chain", chain)
        self._add(NFT_MSG_DELCHAIN, 0, family, attrs, f"delete chain {family} {table} {chain}")

    def add_rule(
        self,
        family: str,
        table: str,
        chain: str,
        exprs: list[bytes],
        comment: str | None = None,
        *,
        insert: bool = False,
    ) -> None:
        """Append the rule (or insert it first in the chain)."""
        attrs = _name_attr(NFTA_RULE_TABLE, "table", table)
        attrs += _name_attr(NFTA_RULE_CHAIN, "chain", chain)
        attrs += _expressions(exprs)
        if comment:
            attrs += nla(NFTA_RULE_USERDATA, udata_comment(comment))
        flags = NLM_F_CREATE | (0 if insert else NLM_F_APPEND)
        self._add(NFT_MSG_NEWRULE, flags, family, attrs, f"add rule {family} {table} {chain}")

    def delete_rule(self, family: str, table: str, chain: str, handle: int) -> None:
        attrs = _name_attr(NFTA_RULE_TABLE, "table", table)
        attrs += _name_attr(NFTA_RULE_CHAIN, "chain", chain)
        attrs += nla(NFTA_RULE_HANDLE, _BE64.pack(handle))
        op = f"delete rule {family} {table} {chain} handle {handle}"
        self._add(NFT_MSG_DELRULE, 0, family, attrs, op)

    def delete_rules(self, rules: list[Rule]) -> None:
        for r in rules:
            self.delete_rule(r.family, r.table, r.chain, r.handle)

    def commit(self) -> None:
        """Send the transaction; NftError (naming the failed step) if the kernel refused it."""
        if self._msgs:
            self._client.transact(self._msgs)
        self._msgs = []


class Nft:
    """A NETLINK_NETFILTER socket in the calling thread's network namespace."""

    def __init__(self) -> None:
        s = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_NETFILTER
        )
        try:
            s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
            s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        except OSError:
            pass
        s.bind((0, 0))
        self._sock: socket.socket | None = s
        self._seq = 0
        self._deleted = False

    def close(self) -> None:
        s, self._sock = self._sock, None
        if s is None:
            return
        if self._deleted:
            _release_elsewhere(s.detach())
        else:
            s.close()

    def __enter__(self) -> Nft:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def batch(self) -> Batch:
        return Batch(self)

    # --- transport ---

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF or 1
        return self._seq

    def _sock_or_fail(self) -> socket.socket:
        if self._sock is None:
            raise ValueError("nftables socket is closed")
        return self._sock

    def transact(self, msgs: list[tuple[int, int, int, bytes, str]]) -> None:
        sock = self._sock_or_fail()
        parts = [self._frame(NFNL_MSG_BATCH_BEGIN, 0, 0, b"", NFNL_SUBSYS_NFTABLES)]
        ops: dict[int, str] = {}
        for msg, flags, family, payload, op in msgs:
            seq = self._seq + 1
            parts.append(
                self._frame(
                    (NFNL_SUBSYS_NFTABLES << 8) | msg,
                    flags | NLM_F_REQUEST | NLM_F_ACK,
                    family,
                    payload,
                )
            )
            ops[seq] = op
        parts.append(self._frame(NFNL_MSG_BATCH_END, 0, 0, b"", NFNL_SUBSYS_NFTABLES))
        sock.send(b"".join(parts))
        self._deleted = self._deleted or any(m[0] in _DELETES for m in msgs)
        errors: list[NftError] = []
        pending = set(ops)
        batch_error: NftError | None = None
        # nfnetlink handles the batch inside send(): every answer is queued now
        while pending:
            msgs_in = self._recv(block=False)
            if not msgs_in:
                break
            for mtype, mflags, seq, body in msgs_in:
                if mtype != NLMSG_ERROR:
                    continue
                err = -_I32.unpack_from(body)[0]
                pending.discard(seq)
                if err:
                    e = NftError(err, ops.get(seq, "commit"), _ext_ack(body, mflags))
                    if seq in ops:
                        errors.append(e)
                    else:
                        batch_error = e
                        pending.clear()
        if errors:
            raise errors[0]
        if batch_error is not None:
            raise batch_error

    def _frame(self, mtype: int, flags: int, family: int, payload: bytes, res_id: int = 0) -> bytes:
        seq = self._next_seq()
        body = _GEN.pack(family, 0, ((res_id & 0xFF) << 8) | (res_id >> 8)) + payload
        return _HDR.pack(16 + len(body), mtype, flags | NLM_F_REQUEST, seq, 0) + body

    def _recv(self, block: bool) -> list[tuple[int, int, int, memoryview]]:
        sock = self._sock_or_fail()
        flags = 0 if block else socket.MSG_DONTWAIT
        try:
            data = sock.recv(1 << 20, flags)
        except BlockingIOError:
            return []
        mv = memoryview(data)
        out = []
        off = 0
        while off + 16 <= len(data):
            ln, t, f, seq, _pid = _HDR.unpack_from(mv, off)
            if ln < 16 or off + ln > len(data):
                break
            out.append((t, f, seq, mv[off + 16 : off + ln]))
            off += (ln + 3) & ~3
        return out

    def _dump(self, msg: int, family: str, payload: bytes, op: str) -> list[memoryview]:
        """A dump request; [] when the table/chain filtered on does not
        exist. Retried while the kernel flags it interrupted (a commit ran
        meanwhile): an interrupted dump can miss or repeat objects."""
        for _ in range(MAX_DUMP_ATTEMPTS):
            out, interrupted = self._dump_once(msg, family, payload, op)
            if not interrupted:
                return out
        raise NftError(_errno.EINTR, op, f"dump interrupted {MAX_DUMP_ATTEMPTS} times")

    def _dump_once(self, msg: int, family: str, payload: bytes, op: str):
        sock = self._sock_or_fail()
        fam = _family(family) if family else 0
        frame = self._frame((NFNL_SUBSYS_NFTABLES << 8) | msg, NLM_F_DUMP | NLM_F_ACK, fam, payload)
        seq = self._seq
        sock.send(frame)
        out: list[memoryview] = []
        interrupted = False
        while True:
            for mtype, mflags, mseq, body in self._recv(block=True):
                if mseq != seq:
                    continue
                if mflags & NLM_F_DUMP_INTR:
                    interrupted = True
                if mtype == NLMSG_DONE:
                    return out, interrupted
                if mtype == NLMSG_ERROR:
                    err = -_I32.unpack_from(body)[0]
                    if err == _errno.ENOENT:
                        return [], False
                    if err:
                        raise NftError(err, op, _ext_ack(body, mflags))
                    return out, interrupted
                out.append(body[4:])  # skip nfgenmsg

    def _get(self, msg: int, family: str, payload: bytes, op: str) -> memoryview | None:
        sock = self._sock_or_fail()
        frame = self._frame((NFNL_SUBSYS_NFTABLES << 8) | msg, NLM_F_ACK, _family(family), payload)
        seq = self._seq
        sock.send(frame)
        found = None
        while True:
            for mtype, mflags, mseq, body in self._recv(block=True):
                if mseq != seq:
                    continue
                if mtype == NLMSG_ERROR:
                    err = -_I32.unpack_from(body)[0]
                    if err == _errno.ENOENT:
                        return None
                    if err:
                        raise NftError(err, op, _ext_ack(body, mflags))
                    return found
                found = body[4:]

    # --- listing ---

    def table_exists(self, family: str, table: str) -> bool:
        payload = _name_attr(NFTA_TABLE_NAME, "table", table)
        return (
            self._get(NFT_MSG_GETTABLE, family, payload, f"list table {family} {table}") is not None
        )

    def chain_exists(self, family: str, table: str, chain: str) -> bool:
        payload = _name_attr(NFTA_CHAIN_TABLE, "table", table)
        payload += _name_attr(NFTA_CHAIN_NAME, "chain", chain)
        op = f"list chain {family} {table} {chain}"
        return self._get(NFT_MSG_GETCHAIN, family, payload, op) is not None

    def tables(self, family: str = "") -> list[tuple[str, str]]:
        """(family, name) of every table (of one family, if given)."""
        out = []
        for body in self._dump(NFT_MSG_GETTABLE, family, b"", "list tables"):
            name = ""
            for t, v in iter_attrs(body):
                if t == NFTA_TABLE_NAME:
                    name = _str(v)
            out.append((family, name))
        return out

    def chain_names(self, family: str, table: str) -> set[str]:
        return {ch.name for ch in self.chains(family, table)}

    def commit_retry(self, build) -> None:
        """Commit `build(batch)` with known chains left out (`known_chains`);
        if a chain vanished meanwhile (ENOENT), once more without that."""
        b = self.batch()
        try:
            build(b, True)
            b.commit()
        except NftError as err:
            if err.errno != _errno.ENOENT:
                raise
            b = self.batch()
            build(b, False)
            b.commit()

    def chains(self, family: str, table: str) -> list[Chain]:
        out = []
        for body in self._dump(NFT_MSG_GETCHAIN, family, b"", f"list chains {family}"):
            attrs = dict(iter_attrs(body))
            if NFTA_CHAIN_TABLE not in attrs or _str(attrs[NFTA_CHAIN_TABLE]) != table:
                continue
            c = Chain(family, table, _str(attrs.get(NFTA_CHAIN_NAME, b"")))
            if NFTA_CHAIN_HOOK in attrs:
                hook = dict(iter_attrs(attrs[NFTA_CHAIN_HOOK]))
                c.hook = _BE32.unpack(bytes(hook[NFTA_HOOK_HOOKNUM]))[0]
                c.priority = _BE32S.unpack(bytes(hook[NFTA_HOOK_PRIORITY]))[0]
            if NFTA_CHAIN_TYPE in attrs:
                c.type = _str(attrs[NFTA_CHAIN_TYPE])
            if NFTA_CHAIN_POLICY in attrs:
                c.policy = _BE32.unpack(bytes(attrs[NFTA_CHAIN_POLICY]))[0]
            if NFTA_CHAIN_USERDATA in attrs:
                c.comment = parse_comment(attrs[NFTA_CHAIN_USERDATA])
            out.append(c)
        return out

    def rules(self, family: str, table: str, chain: str | None = None) -> list[Rule]:
        """The rules of a table (or one chain) in order; [] when it does not exist."""
        payload = _name_attr(NFTA_RULE_TABLE, "table", table)
        if chain is not None:
            payload += _name_attr(NFTA_RULE_CHAIN, "chain", chain)
        op = f"list rules {family} {table}" + (f" {chain}" if chain else "")
        out = []
        for body in self._dump(NFT_MSG_GETRULE, family, payload, op):
            attrs = dict(iter_attrs(body))
            rule_table = _str(attrs.get(NFTA_RULE_TABLE, b""))
            rule_chain = _str(attrs.get(NFTA_RULE_CHAIN, b""))
            if rule_table != table or (chain is not None and rule_chain != chain):
                continue
            handle = _BE64.unpack(bytes(attrs[NFTA_RULE_HANDLE]))[0]
            comment = (
                parse_comment(attrs[NFTA_RULE_USERDATA]) if NFTA_RULE_USERDATA in attrs else ""
            )
            exprs = _parse_exprs(attrs.get(NFTA_RULE_EXPRESSIONS))
            out.append(Rule(family, table, rule_chain, handle, comment, exprs))
        return out


def _release_elsewhere(fd: int) -> None:
    """Close a netfilter socket whose batches deleted objects, without
    waiting for the kernel to free them.

    nf_tables frees deleted tables, chains and rules from a work item after
    an RCU grace period, and the release of any NETLINK_NETFILTER socket
    flushes that work first: the close (or the exit) of a process that has
    just deleted rules waits 5-25 ms here, which a runtime pays on every DEL
    of portmap, firewall and masquerade. The deletion itself is committed
    and visible already; only the memory reclaim is pending. So the last
    reference is handed to a detached grandchild that closes everything
    else and exits at once, and it, not the plugin, waits for the grace
    period. The grandchild holds on until the plugin has closed its own
    reference (end of file on a pipe), so that its exit is the last release.
    A multi-threaded caller closes the socket itself: forking it is not safe.
    """
    try:
        single_threaded = len(os.listdir("/proc/self/task")) == 1
    except OSError:
        single_threaded = False
    if not single_threaded:
        os.close(fd)
        return
    r, w = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        pid = -1
    if pid == 0:
        try:
            if os.fork() == 0:
                low, high = sorted((fd, r))
                os.closerange(0, low)
                os.closerange(low + 1, high)
                os.closerange(high + 1, 1 << 20)
                os.read(r, 1)
        finally:
            os._exit(0)
    os.close(fd)
    os.close(w)
    os.close(r)
    if pid > 0:
        os.waitpid(pid, 0)


def _parse_exprs(nest) -> list[tuple[str, dict[int, bytes]]]:
    if nest is None:
        return []
    out = []
    for t, elem in iter_attrs(nest):
        if t & 0x3FFF != NFTA_LIST_ELEM:
            continue
        name, data = "", {}
        for at, av in iter_attrs(elem):
            if at & 0x3FFF == NFTA_EXPR_NAME:
                name = _str(av)
            elif at & 0x3FFF == NFTA_EXPR_DATA:
                data = {dt & 0x3FFF: bytes(dv) for dt, dv in iter_attrs(av)}
        out.append((name, data))
    return out


def same_exprs(dumped: list, wanted: list[bytes]) -> bool:
    """Whether a listed rule's expressions are the ones `wanted` encodes:
    same expressions in order, each attribute we set equal in the dump (the
    kernel dumps some defaults we leave out, e.g. a bitwise's op)."""
    mine = _parse_exprs(b"".join(wanted))
    if len(mine) != len(dumped):
        return False
    for (name, attrs), (dname, dattrs) in zip(mine, dumped):
        if name != dname or any(dattrs.get(k) != v for k, v in attrs.items()):
            return False
    return True


def chain_is(rules: list[Rule], wanted: list[list[bytes]]) -> bool:
    """Whether a chain's listed rules are exactly `wanted`, in order (so a
    rewrite can be skipped: deleting rules costs every later close of a
    netfilter socket an RCU grace period, 10-40 ms)."""
    return len(rules) == len(wanted) and all(same_exprs(r.exprs, w) for r, w in zip(rules, wanted))


def _ext_ack(body, flags: int) -> str:
    if not flags & NLM_F_ACK_TLVS or len(body) < 20:
        return ""
    orig_len = _U32.unpack_from(body, 4)[0]
    off = 20 if flags & 0x100 else 4 + orig_len  # NLM_F_CAPPED
    off = (off + 3) & ~3
    for t, v in iter_attrs(body, off):
        if t == 1:  # NLMSGERR_ATTR_MSG
            return _str(v)
    return ""


def available() -> bool:
    """Whether this kernel answers nf_tables requests (no process started)."""
    try:
        with Nft() as c:
            c.tables("ip")
    except OSError:
        return False
    return True
