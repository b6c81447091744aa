"""The iptables backend and the iptables ingress policy, rule for rule the reference's.

Table filter of each family that has addresses in prevResult: chains
`CNI-FORWARD` and the admin chain (default `CNI-ADMIN`); `FORWARD` jumps to
`CNI-FORWARD` (inserted at position 1 if absent), `CNI-FORWARD` jumps to the
admin chain first; per container address, appended if absent:

    -A CNI-FORWARD -d <ip>/32 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    -A CNI-FORWARD -s <ip>/32 -j ACCEPT

The ingress policies `same-bridge` and `isolated` add, per family, chains
`CNI-ISOLATION-STAGE-1/2`, a FORWARD jump to stage 1 at position 1 (before
the CNI-FORWARD jump) and per-bridge rules; they are never removed (the
bridge may serve other containers). `same-bridge` writes exactly what the
reference 1.1.1 writes (every rule commented "CNI firewall plugin rules
(ingressPolicy: same-bridge)"). `isolated` is from later reference versions;
there its shared rules (FORWARD jump, RETURNs, stage-2 DROP) carry the 1.1.1
comment too, so one host can mix both policies without a second jump, and
its stage-1 rules the comment "... (ingressPolicy: isolated)".

Each family is read with one iptables-save and changed with one
iptables-restore --noflush (the backend's rules and the ingress rules of an
ADD together); a restore that fails because the table changed since the
save (a chain another ADD created: chains are made with `-N`, which fails
rather than flush) is planned again from a fresh save. Unlike the
reference, only the tools of the families in use must exist (the reference
needs both iptables and ip6tables for any call).
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.netfilter import iptables
from pycni.netfilter.iptables import IptablesError, Table
from pycni.plugins.meta.firewall.conf import FORWARD_CHAIN, NetConf
from pycni.plugins.pkg.errors import Failures
from pycni.spec import errors
from pycni.spec.errors import CNIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Callable
    from typing import TypeVar

    from pycni.plugins.pkg.transaction import Undo
    from pycni.spec.result import Result

    T = TypeVar("T")

FILTER = "filter"
FORWARD = "FORWARD"
STAGE_1 = "CNI-ISOLATION-STAGE-1"
STAGE_2 = "CNI-ISOLATION-STAGE-2"
RULES_COMMENT = "CNI firewall plugin rules"
ADMIN_COMMENT = "CNI firewall plugin admin overrides"
#: the comment of every rule of the reference 1.1.1's same-bridge policy
SHARED_POLICY_COMMENT = "CNI firewall plugin rules (ingressPolicy: same-bridge)"


def _comment(text: str) -> list[str]:
    return ["-m", "comment", "--comment", text]


def forward_jump() -> list[str]:
    return [*_comment(RULES_COMMENT), "-j", FORWARD_CHAIN]


def admin_jump(admin_chain: str) -> list[str]:
    return [*_comment(ADMIN_COMMENT), "-j", admin_chain]


def host_cidr(ip: str, family: int) -> str:
    """The reference's ipString: the address as a host route, ip/32 or ip/128."""
    return f"{ip}/32" if family == 4 else f"{ip}/128"


def ip_rules(ip: str, family: int) -> list[list[str]]:
    """The two CNI-FORWARD rules of one container address."""
    cidr = host_cidr(ip, family)
    return [
        ["-d", cidr, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
        ["-s", cidr, "-j", "ACCEPT"],
    ]


def rules_by_family(result: Result) -> dict[int, list[list[str]]]:
    """{family: per-IP rules} for the families that have addresses, in order."""
    out: dict[int, list[list[str]]] = {}
    for ipc in result.ips:
        out.setdefault(ipc.family, []).extend(ip_rules(ipc.ip, ipc.family))
    return out


def _tool_error(op: str, err: IptablesError) -> CNIError:
    """The failed step, named once (a failed restore already names `op`)."""
    text = str(err)
    return CNIError(errors.ERR_INTERNAL, text if text.startswith(op) else f"{op}: {text}")


#: attempts of one read-change-restore: a restore fails when another process
#: changed what the plan was made from (e.g. created a chain meanwhile)
ATTEMPTS = 3


def _apply(family: int, plan: Callable[[Table], T], op: str, fault: str) -> T:
    """Read the family's filter table, let `plan` queue its changes, restore
    them in one iptables-restore; read and plan again if the restore fails."""
    for attempt in range(ATTEMPTS):
        try:
            with iptables.Lock():  # no other pycni plugin read-modify-writes meanwhile
                table = Table.read(family, FILTER)
                out = plan(table)
                step(fault)
                table.commit(op)
                return out
        except IptablesError as err:
            if attempt == ATTEMPTS - 1:
                raise _tool_error(op, err) from err
    raise AssertionError("unreachable")


def _require_tools(families) -> None:
    for family in families:
        if iptables.binary(family) is None:
            tool = iptables.TOOLS[family][0]
            raise CNIError(
                errors.ERR_INTERNAL,
                f"could not initialize iptables protocol IPv{family}: {tool} not found in PATH",
            )


# --- ADD ---


def add(conf: NetConf, result: Result, bridge: str, undo: Undo) -> None:
    """The backend's chains and rules, and (if the policy says so) the
    isolation rules of `bridge`; one restore per family. The per-IP rules
    this ADD appended are deleted again if a later step fails."""
    by_family = rules_by_family(result)
    _require_tools(by_family)
    for family, rules in by_family.items():

        def plan(table: Table, rules: list[list[str]] = rules) -> list[list[str]]:
            setup_chains(table, conf.admin_chain)
            appended = [r for r in rules if table.append_unique(FORWARD_CHAIN, r)]
            if conf.isolates:
                setup_isolation(table, bridge, conf.ingress_policy)
            return appended

        op = f"firewall ADD (IPv{family})"
        appended = _apply(family, plan, op, f"firewall.add.iptables-v{family}")
        if appended:
            undo.push(
                f"delete the IPv{family} firewall rules", delete_rules, family, appended, "rollback"
            )


def add_isolation_only(conf: NetConf, result: Result, bridge: str) -> None:
    """The ingress policy in iptables without the iptables backend (firewalld)."""
    families = {ipc.family for ipc in result.ips}
    _require_tools(families)
    for family in sorted(families):
        _apply(
            family,
            lambda table: setup_isolation(table, bridge, conf.ingress_policy),
            f"firewall ADD (IPv{family})",
            f"firewall.add.isolation-v{family}",
        )


def setup_chains(table: Table, admin_chain: str) -> None:
    """The reference's setupChains, in its order."""
    table.ensure_chain(FORWARD_CHAIN)
    table.ensure_chain(admin_chain)
    table.insert_unique(FORWARD, forward_jump())
    table.insert_unique(FORWARD_CHAIN, admin_jump(admin_chain))


def isolation_rules(bridge: str, policy: str) -> list[tuple[str, str, list[str]]]:
    """(op, chain, rule) of the isolation of one bridge, in the reference's
    order; op "-I" inserts at position 1, "-A" appends, both only if absent."""
    shared = _comment(SHARED_POLICY_COMMENT)
    own = _comment(f"CNI firewall plugin rules (ingressPolicy: {policy})")
    rules = [
        ("-I", FORWARD, ["-j", STAGE_1, *shared]),
        ("-I", STAGE_1, ["-i", bridge, "!", "-o", bridge, "-j", STAGE_2, *own]),
    ]
    if policy == "isolated":
        rules.append(("-I", STAGE_1, ["-i", bridge, "-o", bridge, "-j", "DROP", *own]))
    rules += [
        ("-A", STAGE_1, ["-j", "RETURN", *shared]),
        ("-I", STAGE_2, ["-o", bridge, "-j", "DROP", *shared]),
        ("-A", STAGE_2, ["-j", "RETURN", *shared]),
    ]
    return rules


def setup_isolation(table: Table, bridge: str, policy: str) -> None:
    table.ensure_chain(STAGE_1)
    table.ensure_chain(STAGE_2)
    for op, chain, rule in isolation_rules(bridge, policy):
        if op == "-I":
            table.insert_unique(chain, rule)
        else:
            table.append_unique(chain, rule)


# --- DEL ---


def delete(result: Result | None) -> None:
    """Delete the per-IP rules of prevResult's addresses (nothing without
    one); chains and jumps stay. A family whose tool is missing had none."""
    if result is None:
        return
    failures = Failures()
    for family, rules in rules_by_family(result).items():
        if iptables.binary(family) is None:
            continue
        failures.attempt(delete_rules, family, rules, "DEL")
    failures.raise_if_any()


def delete_rules(family: int, rules: list[list[str]], why: str) -> None:
    def plan(table: Table) -> None:
        for rule in rules:
            table.delete_if_present(FORWARD_CHAIN, rule)

    _apply(family, plan, f"firewall {why} (IPv{family})", f"firewall.del.iptables-v{family}")


# --- CHECK ---


def check(conf: NetConf, result: Result) -> None:
    """The reference's CHECK: (re)create missing chains, then require both
    jumps and every per-IP rule."""
    by_family = rules_by_family(result)
    _require_tools(by_family)
    for family, rules in by_family.items():

        def plan(table: Table) -> Table:
            table.ensure_chain(FORWARD_CHAIN)
            table.ensure_chain(conf.admin_chain)
            return table

        table = _apply(family, plan, f"firewall CHECK (IPv{family})", "firewall.check.chains")
        required = [(FORWARD, forward_jump()), (FORWARD_CHAIN, admin_jump(conf.admin_chain))]
        for chain, rule in required:
            if not table.has(chain, rule):
                raise CNIError(
                    errors.ERR_INTERNAL, f"expected {chain} rule {go_list(rule)} not found"
                )
        for rule in rules:
            if not table.has(FORWARD_CHAIN, rule):
                raise CNIError(errors.ERR_INTERNAL, f"expected rule {go_list(rule)} not found")


def go_list(items: list[str]) -> str:
    """Go's %v of a []string."""
    return "[" + " ".join(items) + "]"
