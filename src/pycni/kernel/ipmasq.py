"""IP masquerade for bridge/ptp `ipMasq`: the reference's two backends.

nftables (`pkg/ip/ipmasq_nftables_linux.go`): table `inet
cni_plugins_masquerade`, regular chain `masq_checks` with one rule per
container address, commented `<H(net)>-<H(ifname:id)>, net: .., if: .., id: ..`,
and a nat base chain `postrouting` that skips multicast and jumps there.
One `nft -f -` transaction per operation.

iptables (`pkg/ip/ipmasq_iptables_linux.go`): a chain `CNI-<hash(net+id)>`
in table nat (iptables and ip6tables), an ACCEPT for the container subnet, a
MASQUERADE for non-multicast, and a POSTROUTING jump from the container
address, all commented `name: "<net>" id: "<id>"`. The state is read once
with `iptables-save -t nat` and changed with one `iptables-restore
--noflush` (AppendUnique semantics: only missing rules are appended).

The default backend is the reference's: iptables, unless iptables is
unusable and nftables usable. Teardown always tries both backends and only
reports errors of a backend this host supports.

Addresses are given as "ip/prefix" strings (the container address with its
subnet's prefix length, as in a CNI result).
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel import nft
from pycni.spec.ipnet import IPNet, format_ip
from pycni.spec.jsonutil import go_quote

TABLE = "cni_plugins_masquerade"
CHAIN = "masq_checks"
TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"
BACKENDS = ("iptables", "nftables")
_MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}
_TOOLS = {4: ("iptables-save", "iptables-restore"), 6: ("ip6tables-save", "ip6tables-restore")}


class IPMasqError(Exception):
    """A masquerade operation failed; the message names the backend and step."""


# --- hashed names (pkg/utils) ------------------------------------------------------


def format_hash_with_prefix(length: int, prefix: str, to_hash: str) -> str:
    """utils.MustFormatHashWithPrefix: (prefix + hex SHA-512)[:length]."""
    import hashlib

    if len(prefix) >= length or length > 64:
        raise ValueError("invalid hash length or prefix")
    digest = hashlib.sha512(to_hash.encode("utf-8", "surrogateescape")).hexdigest()
    return (prefix + digest)[:length]


def format_chain_name(name: str, container_id: str, prefix: str = "") -> str:
    """utils.FormatChainName: ("CNI-" + prefix + hex SHA-512(name + id))[:28]."""
    return format_hash_with_prefix(28, "CNI-" + prefix, name + container_id)


def format_comment(name: str, container_id: str) -> str:
    """utils.FormatComment: name: "<name>" id: "<id>"."""
    return f"name: {go_quote(name)} id: {go_quote(container_id)}"


def hash_for_network(network: str) -> str:
    return format_hash_with_prefix(16, "", network)


def hash_for_instance(network: str, ifname: str, container_id: str) -> str:
    return (
        hash_for_network(network)
        + "-"
        + format_hash_with_prefix(16, "", ifname + ":" + container_id)
    )


def comment_for_instance(network: str, ifname: str, container_id: str) -> str:
    comment = "{}, net: {}, if: {}, id: {}".format(
        hash_for_instance(network, ifname, container_id),
        network.replace('"', ""),
        ifname.replace('"', ""),
        container_id.replace('"', ""),
    )
    return nft.truncate_comment(comment)


# --- backend selection -----------------------------------------------------------------


def supports_iptables() -> bool:
    """utils.SupportsIPTables: can `iptables` check the filter table's INPUT chain?"""
    try:
        _exec(["iptables", "-w", "5", "-t", "filter", "-S", "INPUT"], None, "check iptables")
    except IPMasqError:
        return False
    return True


def supports_nftables() -> bool:
    return nft.available()


def default_backend() -> str:
    """The reference's choice: iptables unless only nftables is usable."""
    ipt, nft_ok = supports_iptables(), supports_nftables()
    if not ipt and nft_ok:
        return "nftables"
    if not ipt and not nft_ok and nft.which("iptables") is None and nft.binary_available():
        return "nftables"
    return "iptables"


def check_backend(backend: str | None) -> None:
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"unknown ipmasq backend {backend!r}")


# --- public operations ----------------------------------------------------------------------


def setup(
    ipns: list[str], network: str, ifname: str, container_id: str, backend: str | None = None
) -> str:
    """SetupIPMasqForNetworks; returns the backend used."""
    check_backend(backend)
    nets = [IPNet.parse(c) for c in ipns]
    if backend is None:
        backend = default_backend()
    if backend == "iptables":
        for family in (4, 6):
            fam_nets = [n for n in nets if n.family == family]
            if fam_nets:
                _ipt_attachment(family, fam_nets, network, container_id, ipt_setup_lines, "add")
    else:
        _nft_setup(nets, network, ifname, container_id)
    return backend


def teardown(ipns: list[str], network: str, ifname: str, container_id: str) -> None:
    """TeardownIPMasqForNetworks: both backends; errors only from supported ones.

    With no addresses (the interface or its netns is already gone), the
    iptables chain of this network and container is still found and removed
    by its name and comment.
    """
    nets = [IPNet.parse(c) for c in ipns]
    errs = []
    families = sorted({n.family for n in nets}) or [4, 6]
    for family in families:
        try:
            fam_nets = [n for n in nets if n.family == family]
            _ipt_attachment(family, fam_nets, network, container_id, ipt_teardown_lines, "delete")
        except IPMasqError as err:
            if _ipt_family_supported(family):
                errs.append(str(err))
    try:
        _nft_teardown(network, ifname, container_id)
    except (IPMasqError, nft.NftError) as err:
        if supports_nftables():
            errs.append(str(err))
    if errs:
        raise IPMasqError("\n".join(errs))


def gc(network: str, attachments: list[tuple[str, str]]) -> None:
    """GCIPMasqForNetwork: drop this network's rules of attachments not in the list.

    `attachments` is [(container_id, ifname)]. nftables as the reference;
    iptables too (the reference leaves it unimplemented): a chain belongs to
    this network when its POSTROUTING jump carries this network's comment.
    """
    errs = []
    valid_ids = {cid for cid, _ in attachments}
    for family in (4, 6):
        try:
            _ipt_gc(family, network, valid_ids)
        except IPMasqError as err:
            if _ipt_family_supported(family):
                errs.append(str(err))
    try:
        _nft_gc(network, attachments)
    except (IPMasqError, nft.NftError) as err:
        if supports_nftables():
            errs.append(str(err))
    if errs:
        raise IPMasqError("\n".join(errs))


def present(ipns: list[str], network: str, ifname: str, container_id: str) -> bool:
    """Whether masquerade rules of this attachment exist in either backend
    (for CHECK): an nftables rule with the attachment's comment, or the
    iptables chain with a POSTROUTING jump for each address family used."""
    try:
        if _find_rules(hash_for_instance(network, ifname, container_id)):
            return True
    except (nft.NftError, OSError):
        pass
    nets = [IPNet.parse(c) for c in ipns]
    chain = format_chain_name(network, container_id)
    families = sorted({n.family for n in nets}) or [4]
    for family in families:
        try:
            chains, rules = _ipt_read(family)
        except IPMasqError:
            return False
        if chain not in chains or not any(
            r.chain == "POSTROUTING" and r.target == chain for r in rules
        ):
            return False
    return True


# --- nftables backend ----------------------------------------------------------------------


def _nft_rules() -> list[dict]:
    """Rules of masq_checks; [] when the table or chain does not exist yet."""
    try:
        items = nft.list_json("chain", "inet", TABLE, CHAIN)
    except nft.NftError as err:
        if err.not_found:
            return []
        raise
    return [r for r in nft.rules_of(items) if r.get("chain") == CHAIN]


def _find_rules(prefix: str) -> list[dict]:
    return [
        r
        for r in _nft_rules()
        if isinstance(r.get("comment"), str) and r["comment"].startswith(prefix)
    ]


def _delete_rule(rule: dict) -> str:
    return f"delete rule inet {TABLE} {CHAIN} handle {int(rule['handle'])}\n"


def nft_setup_script(nets: list[IPNet], comment: str, stale: list[dict]) -> str:
    """The ADD transaction (exposed for tests)."""
    t = f"inet {TABLE}"
    lines = [
        f"add table {t} {{ comment {nft.quote(TABLE_COMMENT)} ; }}\n",
        f"add chain {t} {CHAIN} {{ comment {nft.quote(CHAIN_COMMENT)} ; }}\n",
        f"add chain {t} postrouting {{ type nat hook postrouting priority srcnat ; }}\n",
        f"flush chain {t} postrouting\n",
        f"add rule {t} postrouting ip daddr == 224.0.0.0/4  return\n",
        f"add rule {t} postrouting ip6 daddr == ff00::/8  return\n",
        f"add rule {t} postrouting goto {CHAIN}\n",
    ]
    lines.extend(_delete_rule(r) for r in stale)
    for n in nets:
        proto = "ip" if n.family == 4 else "ip6"
        lines.append(
            f"add rule {t} {CHAIN} {proto} saddr == {n.ip_str} {proto} daddr != "
            f"{n.network_str} masquerade comment {nft.quote(comment)}\n"
        )
    return "".join(lines)


def _nft_setup(nets: list[IPNet], network: str, ifname: str, container_id: str) -> None:
    comment = comment_for_instance(network, ifname, container_id)
    try:
        stale = _find_rules(hash_for_instance(network, ifname, container_id))
        script = nft_setup_script(nets, comment, stale)
        step("ipmasq.nft")
        nft.run(script, "add nftables masquerade rules")
    except nft.NftError as err:
        raise IPMasqError(str(err))
    except ValueError as err:
        raise IPMasqError(f"nftables masquerade: {err}")


def _nft_teardown(network: str, ifname: str, container_id: str) -> None:
    rules = _find_rules(hash_for_instance(network, ifname, container_id))
    if rules:
        step("ipmasq.nft")
        nft.run("".join(_delete_rule(r) for r in rules), "delete nftables masquerade rules")


def _nft_gc(network: str, attachments: list[tuple[str, str]]) -> None:
    rules = _find_rules(hash_for_network(network))
    valid = {comment_for_instance(network, ifname, cid) for cid, ifname in attachments}
    stale = [r for r in rules if r.get("comment") not in valid]
    if stale:
        nft.run("".join(_delete_rule(r) for r in stale), "garbage-collect masquerade rules")


# --- iptables backend ------------------------------------------------------------------------


def _exec(argv: list[str], stdin: bytes | None, op: str) -> bytes:
    import os
    import subprocess

    env = dict(os.environ)
    env["LC_ALL"] = "C"
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=60, env=env)
    except FileNotFoundError:
        raise IPMasqError(f"{op}: {argv[0]} not found")
    except subprocess.TimeoutExpired:
        raise IPMasqError(f"{op}: {argv[0]} timed out")
    if proc.returncode != 0:
        msg = proc.stderr.decode("utf-8", "replace").strip() or f"exit status {proc.returncode}"
        raise IPMasqError(f"{op}: {msg}")
    return proc.stdout


_FAMILY_SUPPORT: dict[int, bool] = {}


def _ipt_family_supported(family: int) -> bool:
    if family not in _FAMILY_SUPPORT:
        if family == 4:
            _FAMILY_SUPPORT[4] = supports_iptables()
        else:
            try:
                _exec(["ip6tables", "-w", "5", "-t", "filter", "-S", "INPUT"], None, "check")
                _FAMILY_SUPPORT[6] = True
            except IPMasqError:
                _FAMILY_SUPPORT[6] = False
    return _FAMILY_SUPPORT[family]


def split_args(line: str) -> list[str]:
    """Split an iptables-save rule line (double quotes, backslash escapes)."""
    out: list[str] = []
    cur: list[str] = []
    in_word = quoted = False
    i, n = 0, len(line)
    while i < n:
        ch = line[i]
        if quoted:
            if ch == "\\" and i + 1 < n:
                i += 1
                cur.append(line[i])
            elif ch == '"':
                quoted = False
            else:
                cur.append(ch)
        elif ch == '"':
            quoted = in_word = True
        elif ch in " \t":
            if in_word:
                out.append("".join(cur))
                cur, in_word = [], False
        else:
            if ch == "\\" and i + 1 < n:
                i += 1
                ch = line[i]
            cur.append(ch)
            in_word = True
        i += 1
    if in_word:
        out.append("".join(cur))
    return out


def _canon_net(text: str) -> str:
    """An address or CIDR as iptables prints it: network address/prefix."""
    try:
        if "/" not in text:
            text += "/128" if ":" in text else "/32"
        net = IPNet.parse(text)
    except ValueError:
        return text
    return f"{format_ip(net.family, net.network)}/{net.prefixlen}"


class IptRule:
    """One `-A` line of iptables-save, reduced to what these rules use."""

    __slots__ = ("args", "chain", "comment", "dst", "dst_neg", "extra", "src", "target")

    def __init__(self, args: list[str]) -> None:
        self.args = args
        self.chain = self.src = self.dst = self.comment = self.target = ""
        self.dst_neg = False
        extra = []
        neg = False
        i = 0
        while i < len(args):
            a = args[i]
            nxt = args[i + 1] if i + 1 < len(args) else ""
            if a == "-A":
                self.chain, i = nxt, i + 2
            elif a == "!":
                neg, i = True, i + 1
                continue
            elif a in ("-s", "--source"):
                self.src, i = ("!" if neg else "") + _canon_net(nxt), i + 2
            elif a in ("-d", "--destination"):
                self.dst, self.dst_neg, i = _canon_net(nxt), neg, i + 2
            elif a == "-m" and nxt == "comment":
                i += 2
            elif a == "--comment":
                self.comment, i = nxt, i + 2
            elif a in ("-j", "--jump"):
                self.target, i = nxt, i + 2
            else:
                extra.append(("!" if neg else "") + a)
                i += 1
            neg = False
        self.extra = tuple(extra)

    def key(self) -> tuple:
        return (self.chain, self.src, self.dst, self.dst_neg, self.comment, self.target, self.extra)


def _restore_quote(arg: str) -> str:
    if arg and all(c.isalnum() or c in "-_./:!" for c in arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ipt_read(family: int) -> tuple[set[str], list[IptRule]]:
    save = _TOOLS[family][0]
    out = _exec([save, "-t", "nat"], None, f"{save} -t nat").decode("utf-8", "surrogateescape")
    chains: set[str] = set()
    rules: list[IptRule] = []
    in_nat = False
    for line in out.splitlines():
        if line.startswith("*"):
            in_nat = line == "*nat"
        elif not in_nat:
            continue
        elif line.startswith(":"):
            chains.add(line[1:].split(" ", 1)[0])
        elif line.startswith("-A "):
            rules.append(IptRule(split_args(line)))
    return chains, rules


def _ipt_write(family: int, lines: list[str], verb: str) -> None:
    """Apply `lines` (if any) to table nat in one iptables-restore."""
    if not lines:
        return
    step("ipmasq.iptables-restore")
    restore = _TOOLS[family][1]
    script = "*nat\n" + "".join(lines) + "COMMIT\n"
    op = f"{verb} {restore[:-8]} masquerade rules"
    _exec([restore, "--noflush", "-w", "5"], script.encode("utf-8", "surrogateescape"), op)


def _line(op: str, chain: str, args: list[str]) -> str:
    return " ".join([op, chain, *(_restore_quote(a) for a in args)]) + "\n"


def ipt_setup_lines(
    nets: list[IPNet], chain: str, comment: str, chains: set[str], rules: list[IptRule]
) -> list[str]:
    """The restore lines AppendUnique would amount to (exposed for tests)."""
    present = {r.key() for r in rules}
    lines: list[str] = []
    if chain not in chains:
        lines.append(f":{chain} - [0:0]\n")

    def append_unique(ch: str, args: list[str]) -> None:
        key = IptRule(["-A", ch, *args]).key()
        if key not in present:
            present.add(key)
            lines.append(_line("-A", ch, args))

    cm = ["-m", "comment", "--comment", comment]
    for n in nets:
        append_unique(chain, ["-d", str(n), "-j", "ACCEPT", *cm])
        append_unique(chain, ["!", "-d", _MULTICAST[n.family], "-j", "MASQUERADE", *cm])
        append_unique("POSTROUTING", ["-s", n.ip_str, "-j", chain, *cm])
    return lines


def ipt_teardown_lines(
    nets: list[IPNet], chain: str, comment: str, chains: set[str], rules: list[IptRule]
) -> list[str]:
    """Delete the POSTROUTING jumps (bare-IP and legacy CIDR forms, or all of
    this chain's when no address is known), then flush and delete the chain
    unless something else still jumps to it."""
    sources = set()
    for n in nets:
        sources.add(_canon_net(n.ip_str))
        sources.add(f"{format_ip(n.family, n.network)}/{n.prefixlen}")
    lines = []
    remaining = 0
    for r in rules:
        if r.target != chain:
            continue
        ours = (
            r.chain == "POSTROUTING"
            and r.comment == comment
            and not r.dst
            and not r.extra
            and (not nets or r.src in sources)
        )
        if ours:
            lines.append(_line("-D", r.chain, r.args[2:]))
        else:
            remaining += 1
    if chain in chains and not remaining:
        lines.append(f"-F {chain}\n")
        lines.append(f"-X {chain}\n")
    return lines


def _ipt_attachment(
    family: int, nets: list[IPNet], network: str, container_id: str, make_lines, verb: str
) -> None:
    """Read table nat and write the lines `make_lines` (ipt_setup_lines or
    ipt_teardown_lines) gives for this attachment's chain and comment."""
    chain = format_chain_name(network, container_id)
    comment = format_comment(network, container_id)
    chains, rules = _ipt_read(family)
    _ipt_write(family, make_lines(nets, chain, comment, chains, rules), verb)


def _ipt_gc(family: int, network: str, valid_ids: set[str]) -> None:
    chains, rules = _ipt_read(family)
    prefix = f"name: {go_quote(network)} id: "
    stale: set[str] = set()
    for r in rules:
        if r.chain != "POSTROUTING" or not r.comment.startswith(prefix):
            continue
        cid = r.comment[len(prefix) :]
        if len(cid) < 2 or cid[0] != '"' or cid[-1] != '"':
            continue
        cid = cid[1:-1]
        if cid not in valid_ids and r.target == format_chain_name(network, cid):
            stale.add(cid)
    lines: list[str] = []
    for cid in sorted(stale):
        chain = format_chain_name(network, cid)
        lines.extend(ipt_teardown_lines([], chain, format_comment(network, cid), chains, rules))
    _ipt_write(family, lines, "garbage-collect")
