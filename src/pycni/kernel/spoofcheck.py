"""MAC spoof check for bridge ports (`pkg/link/spoofcheck.go`).

All in nftables table `bridge nat`: base chain `PREROUTING` (filter hook,
priority -300, policy accept), and per attachment the chains
`cni-br-iface-<ref>` and `cni-br-iface-<ref>-mac`, where <ref> is
`<containerID>-<ifname>`. Frames entering from the host veth jump to the
iface chain, which jumps to the mac chain: the container's MAC returns,
anything else is dropped. Every rule carries `macspoofchk-<ref>`.

Built as nft JSON (no quoting of user data) and applied with one `nft -j
-f -` transaction for setup and one for teardown.
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.kernel import nft

FAMILY = "bridge"
TABLE = "nat"
BASE_CHAIN = "PREROUTING"
COMMENT_PREFIX = "macspoofchk-"


def ref_id(container_id: str, ifname: str) -> str:
    """The reference's uniqueID(containerID, ifname)."""
    return container_id + "-" + ifname


def iface_chain(ref: str) -> str:
    return "cni-br-iface-" + ref


def mac_chain(ref: str) -> str:
    return iface_chain(ref) + "-mac"


def comment(ref: str) -> str:
    return COMMENT_PREFIX + ref


def _chain(name: str, **extra) -> dict:
    return {"chain": {"family": FAMILY, "table": TABLE, "name": name, **extra}}


def _rule(chain: str, expr: list, ref: str) -> dict:
    return {
        "rule": {
            "family": FAMILY,
            "table": TABLE,
            "chain": chain,
            "expr": expr,
            "comment": comment(ref),
        }
    }


def setup_commands(iface: str, mac: str, ref: str) -> list:
    """The setup transaction as nft JSON commands (exposed for tests)."""
    ichain, mchain = iface_chain(ref), mac_chain(ref)
    return [
        {"add": {"table": {"family": FAMILY, "name": TABLE}}},
        {"add": _chain(BASE_CHAIN, type="filter", hook="prerouting", prio=-300, policy="accept")},
        # `create` fails when the chains exist: they are another attachment's
        # with the same <ref>, which this ADD must neither rewrite nor undo.
        {"create": _chain(ichain)},
        {"create": _chain(mchain)},
        {
            "add": _rule(
                BASE_CHAIN,
                [
                    {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": iface}},
                    {"jump": {"target": ichain}},
                ],
                ref,
            )
        },
        {"add": _rule(ichain, [{"jump": {"target": mchain}}], ref)},
        {
            "add": _rule(
                mchain,
                [
                    {
                        "match": {
                            "op": "==",
                            "left": {"payload": {"protocol": "ether", "field": "saddr"}},
                            "right": mac,
                        }
                    },
                    {"return": None},
                ],
                ref,
            )
        },
        {"add": _rule(mchain, [{"drop": None}], ref)},
    ]


def setup(iface: str, mac: str, ref: str) -> None:
    """Allow only `mac` as source address of frames from `iface` (host veth)."""
    step("spoofcheck.nft")
    try:
        nft.run_json(setup_commands(iface, mac, ref), f"set up mac spoof check for {iface}")
    except nft.NftError as err:
        if "File exists" in err.stderr:
            raise nft.NftError(
                "",
                err.returncode,
                f"failed to setup spoof-check: chain {iface_chain(ref)} already exists "
                "(an attachment with this container ID and interface name is set up; DEL it first)",
            )
        raise nft.NftError(f"failed to setup spoof-check: {err.op}", err.returncode, err.stderr)


def teardown_commands(items: list, ref: str) -> list:
    """Delete the base-chain jump rule(s) and both chains, given the listing
    of table `bridge nat` (exposed for tests)."""
    ichain, mchain = iface_chain(ref), mac_chain(ref)
    chains = {i["chain"]["name"] for i in items if isinstance(i.get("chain"), dict)}
    cmds = []
    for rule in nft.rules_of(items):
        if rule.get("chain") == BASE_CHAIN and rule.get("comment") == comment(ref):
            cmds.append(
                {
                    "delete": {
                        "rule": {
                            "family": FAMILY,
                            "table": TABLE,
                            "chain": BASE_CHAIN,
                            "handle": rule["handle"],
                        }
                    }
                }
            )
    for name in (ichain, mchain):
        if name in chains:
            cmds.append({"delete": _chain(name)})
    return cmds


def teardown(ref: str) -> None:
    """Remove what setup() installed for `ref`; a no-op when none is there."""
    try:
        items = nft.list_json("table", FAMILY, TABLE)
    except nft.NftError as err:
        if err.not_found:
            return
        raise nft.NftError(f"failed to teardown spoof-check: {err.op}", err.returncode, err.stderr)
    cmds = teardown_commands(items, ref)
    if cmds:
        step("spoofcheck.nft")
        try:
            nft.run_json(cmds, f"tear down mac spoof check {ref}")
        except nft.NftError as err:
            raise nft.NftError(
                f"failed to teardown spoof-check: {err.op}", err.returncode, err.stderr
            )


def present(ref: str) -> bool:
    """Whether the chains of `ref` exist (for CHECK)."""
    try:
        items = nft.list_json("table", FAMILY, TABLE)
    except nft.NftError:
        return False
    chains = {i["chain"]["name"] for i in items if isinstance(i.get("chain"), dict)}
    return iface_chain(ref) in chains and mac_chain(ref) in chains
