"""Leases over any engine's write transaction: claim, allocate, release.

The order an ADD tries, per range set (a pool):

1. a requested address goes into whatever block holds it (claimed for this
   node if nobody has it yet);
2. otherwise the lowest free usable address of this node's blocks;
3. otherwise the lowest free block of the pool is claimed for this node;
4. otherwise an address in another node's block (borrowed: the lease is
   this node's, the block stays the other's), so a pool is exhausted only
   when it is full, not when every block is claimed.

Everything runs inside the caller's write transaction, so an ADD is all or
nothing, and the UNIQUE constraints of schema.py refuse any second holder
of an address even if this code were wrong. A block is released when its
last lease goes (DEL, GC, or an ADD that rolls back its claim).

Where writers run side by side (PostgreSQL), steps 1-2 hold the (pool,
node) lock only, so nodes allocating in their own blocks never wait for
each other; steps 3-4 and claiming a requested address's block take the
pool lock and read the blocks again (see engine.Tx.lock_pool).
"""

from __future__ import annotations

from pycni.faultpoint import step
from pycni.plugins.ipam.sql.blocks import (
    addresses,
    block_base,
    block_cidr,
    block_span,
    capacity,
    free_block,
    usable,
)
from pycni.plugins.ipam.sql.engine import Conflict
from pycni.spec.errors import ERR_INTERNAL, CNIError
from pycni.spec.ipnet import ip_text, parse_addr

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.ipam.host_local.allocator import RangeSet
    from pycni.plugins.ipam.sql.engine import Tx


def pool_key(rset: RangeSet) -> str:
    """A pool's name in the database: its ranges, e.g.
    "198.18.0.0/24 198.18.0.1-198.18.0.254"."""
    return ",".join(
        f"{r.subnet} {ip_text(r.family, r.start)}-{ip_text(r.family, r.end)}" for r in rset.ranges
    )


class Attachment:
    """Who asks: network, node, container ID, ifname."""

    __slots__ = ("container_id", "ifname", "network", "node")

    def __init__(self, network: str, node: str, container_id: str, ifname: str) -> None:
        self.network = network
        self.node = node
        self.container_id = container_id
        self.ifname = ifname


def find_pool(tx: Tx, network: str, rset: RangeSet) -> int | None:
    rows = tx.rows(
        "SELECT id FROM pools WHERE network = ? AND range_set = ?", (network, pool_key(rset))
    )
    return int(rows[0][0]) if rows else None


def ensure_pool(tx: Tx, network: str, rset: RangeSet) -> int:
    found = find_pool(tx, network, rset)
    if found is not None:
        return found
    step("sql.add.pool")
    return tx.insert(
        "INSERT INTO pools (network, range_set, family) VALUES (?, ?, ?)",
        (network, pool_key(rset), rset.family),
    )


def allocate(
    tx: Tx,
    who: Attachment,
    idx: int,
    rset: RangeSet,
    prefix: int,
    want: tuple[int, int] | None,
) -> int:
    """Lease one address of range set `idx` to `who`; its value."""
    pool = ensure_pool(tx, who.network, rset)
    tx.lock_node(pool, who.node)
    held = tx.rows(
        "SELECT ip FROM leases WHERE network = ? AND container_id = ? AND ifname = ? "
        "AND (pool = ? OR set_index = ?)",
        (who.network, who.container_id, who.ifname, pool, idx),
    )
    if want is not None:
        return _requested(tx, who, idx, rset, prefix, pool, want, held)
    if held:
        raise _duplicate(held[0][0], who)
    parsed, borrowed, value = _own_blocks(tx, who, idx, rset, pool)
    if value is not None:
        return value
    if tx.lock_pool(pool):  # others may have claimed or freed blocks meanwhile
        parsed, borrowed, value = _own_blocks(tx, who, idx, rset, pool)
        if value is not None:
            return value
    family = rset.family
    taken = [(base, base + block_span(family, plen) - 1) for _, base, plen, _, _ in parsed]
    fresh = free_block(rset, prefix, taken)
    while fresh is not None:
        block_id = _claim(tx, who, pool, family, prefix, fresh)
        value = _lease_in_block(tx, who, idx, rset, pool, block_id, fresh, prefix)
        if value is not None:
            return value
        # every address of the new block is leased under an older pool of
        # this network (its ranges changed): give the block back, go on
        tx.run("DELETE FROM blocks WHERE id = ?", (block_id,))
        taken.append((fresh, fresh + block_span(family, prefix) - 1))
        fresh = free_block(rset, prefix, taken)
    for base, plen, block_id in borrowed:
        value = _lease_in_block(tx, who, idx, rset, pool, block_id, base, plen)
        if value is not None:
            return value
    raise CNIError(
        ERR_INTERNAL,
        f"no IP addresses available in range set: {rset} (pool {pool_key(rset)!r} "
        f"of network {who.network!r})",
    )


def _own_blocks(
    tx: Tx, who: Attachment, idx: int, rset: RangeSet, pool: int
) -> tuple[list[tuple], list[tuple[int, int, int]], int | None]:
    """The pool's blocks (parsed), the other nodes' blocks with room, and
    an address leased in one of this node's blocks (None: they are full)."""
    blocks = tx.rows(
        "SELECT b.id, b.cidr, b.node, COUNT(l.id) FROM blocks b "
        "LEFT JOIN leases l ON l.block = b.id WHERE b.pool = ? "
        "GROUP BY b.id, b.cidr, b.node",
        (pool,),
    )
    parsed = []
    for block_id, cidr, node, used in blocks:
        base_text, _, plen = cidr.partition("/")
        parsed.append((node != who.node, parse_addr(base_text)[1], int(plen), block_id, used))
    parsed.sort()
    borrowed = []
    for other, base, plen, block_id, used in parsed:
        if used >= capacity(rset, plen, base):
            continue
        if other:
            borrowed.append((base, plen, block_id))
            continue
        value = _lease_in_block(tx, who, idx, rset, pool, block_id, base, plen)
        if value is not None:
            return parsed, borrowed, value
    return parsed, borrowed, None


def _duplicate(ip: str, who: Attachment) -> CNIError:
    # host-local's message: a second ADD of one attachment is refused
    return CNIError(
        ERR_INTERNAL,
        f"{ip} has been allocated to {who.container_id}, duplicate allocation is not allowed",
    )


def _claim(tx: Tx, who: Attachment, pool: int, family: int, prefix: int, base: int) -> int:
    step("sql.add.claim")
    try:
        return tx.insert(
            "INSERT INTO blocks (pool, cidr, node) VALUES (?, ?, ?)",
            (pool, block_cidr(family, prefix, base), who.node),
        )
    except Conflict as err:  # not reached under the write lock
        raise CNIError(ERR_INTERNAL, f"block {block_cidr(family, prefix, base)} taken: {err}")


def _insert_lease(
    tx: Tx, who: Attachment, idx: int, pool: int, block_id: int, family: int, value: int
) -> None:
    step("sql.add.lease")
    tx.insert(
        "INSERT INTO leases (pool, block, ip, node, network, container_id, ifname, set_index) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            pool,
            block_id,
            ip_text(family, value),
            who.node,
            who.network,
            who.container_id,
            who.ifname,
            idx,
        ),
    )


def _lease_in_block(
    tx: Tx,
    who: Attachment,
    idx: int,
    rset: RangeSet,
    pool: int,
    block_id: int,
    base: int,
    plen: int,
) -> int | None:
    """The lowest free address of one block, leased; None if it has none."""
    family = rset.family
    leased = {row[0] for row in tx.rows("SELECT ip FROM leases WHERE block = ?", (block_id,))}
    for value in addresses(rset, plen, base):
        if ip_text(family, value) in leased:
            continue
        try:
            _insert_lease(tx, who, idx, pool, block_id, family, value)
        except Conflict:
            continue  # leased in this network under another pool
        return value
    return None


def _requested(
    tx: Tx,
    who: Attachment,
    idx: int,
    rset: RangeSet,
    prefix: int,
    pool: int,
    want: tuple[int, int],
    held: list[tuple],
) -> int:
    family, value = want
    text = ip_text(family, value)
    rng = rset.range_for(family, value)
    if rng is None:
        raise CNIError(ERR_INTERNAL, f"{text} not in range set {rset}")
    if value == rng.gateway:
        raise CNIError(ERR_INTERNAL, f"requested ip {text} is subnet's gateway")
    if not usable(rng, value):
        raise CNIError(
            ERR_INTERNAL, f"requested ip {text} is the network or broadcast address of {rng.subnet}"
        )
    taken = tx.rows("SELECT 1 FROM leases WHERE network = ? AND ip = ?", (who.network, text))
    if taken:
        raise CNIError(
            ERR_INTERNAL, f"requested IP address {text} is not available in range set {rset}"
        )
    if held:
        raise _duplicate(held[0][0], who)
    block_id = _block_holding(tx, pool, family, value)
    if block_id is None and tx.lock_pool(pool):
        block_id = _block_holding(tx, pool, family, value)
    if block_id is None:
        block_id = _claim(tx, who, pool, family, prefix, block_base(family, prefix, value))
    try:
        _insert_lease(tx, who, idx, pool, block_id, family, value)
    except Conflict:
        raise CNIError(
            ERR_INTERNAL, f"requested IP address {text} is not available in range set {rset}"
        )
    return value


def _block_holding(tx: Tx, pool: int, family: int, value: int) -> int | None:
    """The pool's claimed block that holds `value` (any prefix length)."""
    for block_id, cidr in tx.rows("SELECT id, cidr FROM blocks WHERE pool = ?", (pool,)):
        base_text, _, plen = cidr.partition("/")
        base = parse_addr(base_text)[1]
        if base <= value < base + block_span(family, int(plen)):
            return int(block_id)
    return None


# -- release --------------------------------------------------------------------------------


def release(tx: Tx, network: str, container_id: str, ifname: str) -> int:
    """Drop the attachment's leases (any node) and the blocks they emptied."""
    rows = tx.rows(
        "SELECT id, block FROM leases WHERE network = ? AND container_id = ? AND ifname = ?",
        (network, container_id, ifname),
    )
    if not rows:
        return 0
    step("sql.del.release")
    for lease_id, _ in rows:
        tx.run("DELETE FROM leases WHERE id = ?", (lease_id,))
    release_empty_blocks(tx, {block for _, block in rows})
    return len(rows)


def release_empty_blocks(tx: Tx, block_ids: set[int]) -> None:
    ids = sorted(block_ids)
    if not ids:
        return
    tx.lock_blocks("id IN (" + ", ".join("?" * len(ids)) + ")", tuple(ids))
    for block_id in ids:
        tx.run_guarded(
            "DELETE FROM blocks WHERE id = ? AND NOT EXISTS "
            "(SELECT 1 FROM leases WHERE leases.block = blocks.id)",
            (block_id,),
        )


def gc(tx: Tx, network: str, node: str, keep: set[tuple[str, str]]) -> int:
    """Drop this node's leases of `network` that no valid attachment owns,
    then this node's blocks of the network that hold no lease."""
    rows = tx.rows(
        "SELECT id, container_id, ifname FROM leases WHERE network = ? AND node = ?",
        (network, node),
    )
    stale = [lease_id for lease_id, cid, ifname in rows if (cid, ifname) not in keep]
    if stale:
        step("sql.gc.release")
    for lease_id in stale:
        tx.run("DELETE FROM leases WHERE id = ?", (lease_id,))
    mine = "node = ? AND pool IN (SELECT id FROM pools WHERE network = ?)"
    tx.lock_blocks(mine, (node, network))
    tx.run_guarded(
        "DELETE FROM blocks WHERE node = ? AND pool IN (SELECT id FROM pools WHERE network = ?) "
        "AND NOT EXISTS (SELECT 1 FROM leases WHERE leases.block = blocks.id)",
        (node, network),
    )
    return len(stale)


def leases_of(tx: Tx, network: str, container_id: str, ifname: str) -> list[tuple[int, int]]:
    """The attachment's addresses."""
    rows = tx.rows(
        "SELECT ip FROM leases WHERE network = ? AND container_id = ? AND ifname = ?",
        (network, container_id, ifname),
    )
    return [parse_addr(row[0]) for row in rows]


def used(tx: Tx, network: str, rset: RangeSet) -> int:
    """Leases of the pool of `rset` (0 if it has none yet)."""
    pool = find_pool(tx, network, rset)
    if pool is None:
        return 0
    return int(tx.rows("SELECT COUNT(*) FROM leases WHERE pool = ?", (pool,))[0][0])
