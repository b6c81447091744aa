"""What `pycni ipam` reads and changes, over any engine's transaction.

Portable SQL only (no engine's own functions), so the PostgreSQL engine
serves the same queries. Pools are rebuilt from their `range_set` key
(allocator.pool_key); the key does not record a custom gateway, so
capacities assume each range's default gateway (its subnet's first
address) -- off by at most one address per range otherwise.
"""

from __future__ import annotations

from pycni.plugins.ipam.sql.allocator import release_empty_blocks
from pycni.plugins.ipam.sql.blocks import block_base, block_span, capacity
from pycni.plugins.ipam.sql.conf import DEFAULT_BLOCK
from pycni.spec.ipnet import IPNet, parse_addr

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.ipam.host_local.allocator import RangeSet
    from pycni.plugins.ipam.sql.engine import Tx

#: blocks per range counted one by one (beyond: arithmetic, e.g. IPv6 /64)
_COUNT_LIMIT = 4096


def range_set_of(key: str) -> RangeSet:
    """The range set a pool key names; ValueError if it names none."""
    from pycni.plugins.ipam.host_local.allocator import Range, RangeSet

    ranges = []
    for part in key.split(","):
        subnet_text, _, span = part.strip().partition(" ")
        start, _, end = span.partition("-")
        ranges.append(Range.canonical(IPNet.parse(subnet_text), parse_addr(start), parse_addr(end)))
    return RangeSet(ranges)


def parse_cidr(cidr: str) -> tuple[int, int, int]:
    """(family, base, prefix) of a stored block; ValueError if malformed."""
    net = IPNet.parse(cidr)
    return net.family, net.ip, net.prefixlen


def total_blocks(rset: RangeSet, prefix: int) -> int:
    """Blocks of `prefix` with a usable address (what the allocator can claim)."""
    family = rset.family
    span = block_span(family, prefix)
    seen: set[int] = set()
    extra = 0
    for r in rset.ranges:
        first, last = block_base(family, prefix, r.start), block_base(family, prefix, r.end)
        count = (last - first) // span + 1
        if count > _COUNT_LIMIT:
            extra += count
            continue
        seen.update(b for b in range(first, last + 1, span) if capacity(rset, prefix, b) > 0)
    return len(seen) + extra


class Pool:
    """One pool and how full it is."""

    __slots__ = ("blocks", "family", "id", "key", "leases", "network", "rset", "total", "usable")

    def __init__(self, pool_id: int, network: str, key: str, family: int) -> None:
        self.id = pool_id
        self.network = network
        self.key = key
        self.family = family
        self.rset: RangeSet | None = None
        self.blocks = 0
        self.total = 0
        self.leases = 0
        self.usable = 0

    @property
    def free(self) -> int:
        return max(self.usable - self.leases, 0)


def pools(tx: Tx) -> list[Pool]:
    """Every pool with its claimed/claimable blocks, leases and capacity."""
    found = [
        Pool(int(i), net, key, int(fam))
        for i, net, key, fam in tx.rows(
            "SELECT id, network, range_set, family FROM pools ORDER BY network, id"
        )
    ]
    prefixes: dict[int, list[int]] = {}
    for pool_id, cidr in tx.rows("SELECT pool, cidr FROM blocks"):
        prefixes.setdefault(int(pool_id), []).append(int(cidr.rpartition("/")[2] or 0))
    counts = dict(tx.rows("SELECT pool, COUNT(*) FROM leases GROUP BY pool"))
    for pool in found:
        claimed = prefixes.get(pool.id, [])
        pool.blocks = len(claimed)
        pool.leases = int(counts.get(pool.id, 0))
        try:
            rset = range_set_of(pool.key)
        except ValueError:
            continue
        pool.rset = rset
        pool.usable = capacity(rset, 0)
        prefix = max(set(claimed), key=claimed.count) if claimed else 0
        if not prefix:  # nothing claimed: the plugin's default block size
            widest = max(r.subnet.prefixlen for r in rset.ranges)
            prefix = max(DEFAULT_BLOCK[rset.family], widest)
        pool.total = total_blocks(rset, prefix)
    return found


def _where(**columns: str | None) -> tuple[str, tuple]:
    """A WHERE clause matching the columns given a value (None: any)."""
    terms = [(col.replace("_", "."), value) for col, value in columns.items() if value is not None]
    if not terms:
        return "", ()
    return " WHERE " + " AND ".join(f"{c} = ?" for c, _ in terms), tuple(v for _, v in terms)


def _addr_key(text: str) -> tuple[int, int]:
    try:
        return parse_addr(text.partition("/")[0])
    except ValueError:
        return (99, 0)


def blocks(tx: Tx, network: str | None = None, node: str | None = None) -> list[tuple]:
    """(node, network, cidr, leases, capacity, claimed) of claimed blocks."""
    where, params = _where(p_network=network, b_node=node)
    rows = tx.rows(
        "SELECT b.node, p.network, b.cidr, b.claimed, p.range_set, "
        "(SELECT COUNT(*) FROM leases l WHERE l.block = b.id) "
        f"FROM blocks b JOIN pools p ON p.id = b.pool{where}",
        params,
    )
    out = []
    for blk_node, net, cidr, claimed, key, used in rows:
        try:
            _, base, prefix = parse_cidr(cidr)
            cap = capacity(range_set_of(key), prefix, base)
        except ValueError:
            cap = 0
        out.append((blk_node, net, cidr, int(used), cap, claimed))
    out.sort(key=lambda r: (r[0], r[1], _addr_key(r[2])))
    return out


def leases(tx: Tx, network: str | None = None, node: str | None = None) -> list[tuple]:
    """(ip, node, network, container_id, ifname, created) of leases."""
    where, params = _where(l_network=network, l_node=node)
    rows = tx.rows(
        f"SELECT ip, node, network, container_id, ifname, created FROM leases l{where}", params
    )
    return sorted(rows, key=lambda r: (r[2], _addr_key(r[0]), r[1]))


def nodes(tx: Tx) -> list[str]:
    """Every node that holds a block or a lease."""
    rows = tx.rows("SELECT node FROM blocks UNION SELECT node FROM leases")
    return sorted(row[0] for row in rows)


# -- release-node -----------------------------------------------------------------------------


class NodeRelease:
    """What releasing a node frees: its leases, its blocks, and its blocks
    that other nodes' (borrowed) leases still use, which are handed over to
    the node with most leases there instead of freed."""

    __slots__ = ("blocks", "handed", "leases", "node")

    def __init__(self, node: str) -> None:
        self.node = node
        self.leases: list[tuple] = []  # (id, ip, network, container_id, ifname)
        self.blocks: list[tuple] = []  # (id, network, cidr)
        self.handed: list[tuple] = []  # (id, network, cidr, new node)

    def __bool__(self) -> bool:
        return bool(self.leases or self.blocks or self.handed)


def plan_release(tx: Tx, node: str) -> NodeRelease:
    plan = NodeRelease(node)
    plan.leases = sorted(
        tx.rows(
            "SELECT id, ip, network, container_id, ifname FROM leases WHERE node = ?",
            (node,),
        ),
        key=lambda r: (r[2], _addr_key(r[1])),
    )
    owned = tx.rows(
        "SELECT b.id, p.network, b.cidr FROM blocks b JOIN pools p ON p.id = b.pool "
        "WHERE b.node = ?",
        (node,),
    )
    for block_id, network, cidr in sorted(owned, key=lambda r: (r[1], _addr_key(r[2]))):
        others = tx.rows(
            "SELECT node, COUNT(*) FROM leases WHERE block = ? AND node <> ? GROUP BY node",
            (block_id, node),
        )
        if others:
            heir = sorted(others, key=lambda r: (-int(r[1]), r[0]))[0][0]
            plan.handed.append((block_id, network, cidr, heir))
        else:
            plan.blocks.append((block_id, network, cidr))
    return plan


def release_node(tx: Tx, node: str) -> NodeRelease:
    """Free the node's leases and blocks inside the caller's write
    transaction; what was freed. Blocks of other nodes that its borrowed
    leases emptied stay theirs (their GC or DEL releases them)."""
    plan = plan_release(tx, node)
    for lease in plan.leases:
        tx.run("DELETE FROM leases WHERE id = ?", (lease[0],))
    for block_id, _, _, heir in plan.handed:
        tx.run("UPDATE blocks SET node = ? WHERE id = ?", (heir, block_id))
    release_empty_blocks(tx, {b[0] for b in plan.blocks})
    return plan


# -- check ------------------------------------------------------------------------------------


def check(tx: Tx) -> list[str]:
    """The inconsistencies the schema's constraints do not rule out (or
    that a hand-edited database or another engine could hold)."""
    findings: list[str] = []
    rsets: dict[int, RangeSet] = {}
    pool_net: dict[int, str] = {}
    pool_rows = tx.rows("SELECT id, network, range_set FROM pools ORDER BY id")
    for pool_id, network, key in pool_rows:
        pool_net[int(pool_id)] = network
        try:
            rsets[int(pool_id)] = range_set_of(key)
        except ValueError as err:
            findings.append(f"pool {pool_id} of network {network!r}: bad range set {key!r}: {err}")
    spans = _check_blocks(tx, rsets, findings)
    _check_leases(tx, rsets, pool_net, spans, findings)
    live = {pool for pool, _ in spans.values()}
    ids = sorted(p for p in rsets if p in live)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            if pool_net[a] == pool_net[b] and rsets[a].overlaps(rsets[b]):
                findings.append(
                    f"pools {a} and {b} of network {pool_net[a]!r} overlap and both hold "
                    f"blocks: {rsets[a]} and {rsets[b]} (its ranges changed? the old pool "
                    "drains as its leases go)"
                )
    return findings


def _check_blocks(tx: Tx, rsets: dict, findings: list[str]) -> dict[int, tuple[int, tuple]]:
    """Blocks that are malformed, outside their pool or overlapping another
    block of it; returns block id -> (pool, (family, first, last))."""
    spans: dict[int, tuple[int, tuple]] = {}
    by_pool: dict[int, list[tuple]] = {}
    for block_id, pool_id, cidr, node in tx.rows("SELECT id, pool, cidr, node FROM blocks"):
        what = f"block {cidr} of node {node!r}"
        try:
            family, base, prefix = parse_cidr(cidr)
        except ValueError:
            findings.append(f"{what}: not a CIDR")
            continue
        if base != block_base(family, prefix, base):
            findings.append(f"{what}: host bits set")
        last = base + block_span(family, prefix) - 1
        spans[int(block_id)] = (int(pool_id), (family, base, last))
        rset = rsets.get(int(pool_id))
        if rset is not None and (rset.family != family or capacity(rset, prefix, base) <= 0):
            findings.append(f"{what}: no usable address of its pool's ranges {rset}")
        by_pool.setdefault(int(pool_id), []).append((base, last, cidr, node))
    for pool_id, items in sorted(by_pool.items()):
        items.sort()
        reach = None
        for base, last, cidr, node in items:
            if reach is not None and base <= reach[0]:
                findings.append(
                    f"blocks {reach[1]} (node {reach[2]!r}) and {cidr} (node {node!r}) of "
                    f"pool {pool_id} overlap"
                )
            if reach is None or last > reach[0]:
                reach = (last, cidr, node)
    return spans


def _check_leases(tx: Tx, rsets: dict, pool_net: dict, spans: dict, findings: list[str]) -> None:
    seen: dict[tuple[str, tuple[int, int]], list[str]] = {}
    texts: dict[tuple[str, tuple[int, int]], str] = {}
    rows = tx.rows(
        "SELECT id, pool, block, ip, node, network, container_id, ifname FROM leases ORDER BY id"
    )
    for _lid, pool_id, block_id, ip, node, network, cid, ifname in rows:
        what = f"lease {ip} of {cid}/{ifname} on node {node!r} (network {network!r})"
        try:
            addr = parse_addr(ip)
        except ValueError:
            findings.append(f"{what}: not an IP address")
            continue
        texts.setdefault((network, addr), ip)
        seen.setdefault((network, addr), []).append(f"pool {pool_id} ({cid}/{ifname} on {node})")
        pool_id = int(pool_id)
        if pool_id not in pool_net:
            findings.append(f"{what}: its pool {pool_id} does not exist")
        elif pool_net[pool_id] != network:
            findings.append(f"{what}: its pool {pool_id} belongs to network {pool_net[pool_id]!r}")
        rset = rsets.get(pool_id)
        if rset is not None and not rset.contains(*addr):
            findings.append(f"{what}: outside the ranges of its pool ({rset})")
        span = spans.get(int(block_id))
        if span is None:
            findings.append(f"{what}: its block {block_id} does not exist")
            continue
        block_pool, (family, first, last) = span
        if block_pool != pool_id:
            findings.append(f"{what}: its block belongs to pool {block_pool}, not {pool_id}")
        if addr[0] != family or not first <= addr[1] <= last:
            findings.append(f"{what}: outside its block {_cidr_of(tx, int(block_id))}")
    for key, holders in seen.items():
        if len(holders) > 1:
            findings.append(
                f"address {texts[key]} of network {key[0]!r} is leased {len(holders)} times: "
                + ", ".join(holders)
            )


def _cidr_of(tx: Tx, block_id: int) -> str:
    rows = tx.rows("SELECT cidr FROM blocks WHERE id = ?", (block_id,))
    return rows[0][0] if rows else "?"
