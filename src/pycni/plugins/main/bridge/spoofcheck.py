"""MAC spoof check for bridge ports (`pkg/link/spoofcheck.go`).

All in nftables table `bridge nat`: base chain `PREROUTING` (filter hook,
priority -300, policy accept), and per attachment the chains
`cni-br-iface-<ref>` and `cni-br-iface-<ref>-mac`, where <ref> is
`<containerID>-<ifname>`. Frames entering from the host veth jump to the
iface chain, which jumps to the mac chain: the container's MAC returns,
anything else is dropped. Every rule carries `macspoofchk-<ref>`.

One nf_tables batch for setup and one for teardown, through our client.
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.netfilter import nfexpr as x
from pycni.netfilter import nftables as nft
from pycni.spec.errors import ERR_INTERNAL, CNIError

FAMILY = "bridge"
TABLE = "nat"
BASE_CHAIN = "PREROUTING"
COMMENT_PREFIX = "macspoofchk-"


def _error(msg: str) -> CNIError:
    return CNIError(ERR_INTERNAL, msg)


def ref_id(container_id: str, ifname: str) -> str:
    """The reference's uniqueID(containerID, ifname)."""
    return container_id + "-" + ifname


def iface_chain(ref: str) -> str:
    return "cni-br-iface-" + ref


def mac_chain(ref: str) -> str:
    return iface_chain(ref) + "-mac"


def comment(ref: str) -> str:
    return COMMENT_PREFIX + ref


def setup_batch(b: nft.Batch, iface: str, mac: str, ref: str) -> None:
    """The setup transaction (exposed for tests)."""
    ichain, mchain, cm = iface_chain(ref), mac_chain(ref), comment(ref)
    b.add_table(FAMILY, TABLE)
    b.add_chain(
        FAMILY, TABLE, BASE_CHAIN, type="filter", hook="prerouting", priority=-300, policy="accept"
    )
    # `create` fails when the chains exist: they are another attachment's
    # with the same <ref>, which this ADD must neither rewrite nor undo.
    b.add_chain(FAMILY, TABLE, ichain, exclusive=True)
    b.add_chain(FAMILY, TABLE, mchain, exclusive=True)
    b.add_rule(FAMILY, TABLE, BASE_CHAIN, [*x.iifname(iface), *x.verdict("jump", ichain)], cm)
    b.add_rule(FAMILY, TABLE, ichain, x.verdict("jump", mchain), cm)
    b.add_rule(FAMILY, TABLE, mchain, [*x.ether_saddr(mac), *x.verdict("return")], cm)
    b.add_rule(FAMILY, TABLE, mchain, x.verdict("drop"), cm)


def setup(iface: str, mac: str, ref: str) -> None:
    """Allow only `mac` as source address of frames from `iface` (host veth)."""
    try:
        with nft.Nft() as c:

            def build(b: nft.Batch, fast: bool) -> None:
                if fast:
                    b.known_chains(FAMILY, TABLE)
                setup_batch(b, iface, mac, ref)
                step("spoofcheck.nft")

            c.commit_retry(build)
    except nft.NftError as err:
        import errno

        if err.errno == errno.EEXIST:
            raise _error(
                f"failed to setup spoof-check: chain {iface_chain(ref)} already exists "
                "(an attachment with this container ID and interface name is set up; DEL it first)"
            )
        raise _error(f"failed to setup spoof-check: {err}")
    except (OSError, ValueError) as err:
        raise _error(f"failed to setup spoof-check: {err}")


def teardown(ref: str, client: nft.Nft | None = None) -> None:
    """Remove what setup() installed for `ref`; a no-op when none is there.
    `client` is a socket of the caller's, left open."""
    try:
        c = client or nft.Nft()
        try:
            jumps = [r for r in c.rules(FAMILY, TABLE, BASE_CHAIN) if r.comment == comment(ref)]
            b = c.batch()
            b.delete_rules(jumps)
            for name in (iface_chain(ref), mac_chain(ref)):
                if c.chain_exists(FAMILY, TABLE, name):
                    b.flush_chain(FAMILY, TABLE, name)
                    b.delete_chain(FAMILY, TABLE, name)
            if len(b):
                step("spoofcheck.nft")
            b.commit()
        finally:
            if client is None:
                c.close()
    except OSError as err:
        raise _error(f"failed to teardown spoof-check: {err}")


def present(ref: str) -> bool:
    """Whether the chains of `ref` exist (for CHECK)."""
    with nft.Nft() as c:
        return c.chain_exists(FAMILY, TABLE, iface_chain(ref)) and c.chain_exists(
            FAMILY, TABLE, mac_chain(ref)
        )
