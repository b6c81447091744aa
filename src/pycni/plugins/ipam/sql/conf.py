"""sql configuration: host-local's range sets and requests, plus where the
database is, which node this is and how large its blocks are.

The range sets, requested addresses and routes are decoded by host-local's
and pkg.ipamconf's code, so both plugins accept and reject the same input
with the same messages. Extra keys of `ipam`:

* `database`: `{"engine": "sqlite", "path": "..."}`; engine defaults to
  sqlite, path to DEFAULT_PATH. `{"engine": "postgres", "dsn": "..."}`: a
  libpq conninfo string or postgresql:// URI (required; `path` is SQLite's).
* `node`: this node's name (default: the host name).
* `blockSize`: prefix length of the blocks a node claims, an integer for
  every range set or `{"ipv4": 26, "ipv6": 122}`; the default (/26, /122)
  shrinks to a range's subnet when the subnet is smaller.
"""

from __future__ import annotations

from pycni.plugins.pkg.ipamconf import ipam_section
from pycni.spec.errors import ERR_INVALID_NETWORK_CONFIG, CNIError
from pycni.spec.jsonutil import ci_get, json_kind

TYPE_CHECKING = False
if TYPE_CHECKING:  # pragma: no cover
    from pycni.plugins.ipam.host_local.allocator import RangeSet
    from pycni.spec.result import DNS, Route

DEFAULT_ENGINE = "sqlite"
DEFAULT_PATH = "/var/lib/cni/sql-ipam/ipam.db"
DEFAULT_BLOCK = {4: 26, 6: 122}

# the node daemon's socket (`sql daemon`, daemon.py) and the engines whose
# verbs run there: their drivers cost a plugin process 140-300 ms to import
DEFAULT_SOCKET_PATH = "/run/cni/sql-ipam.sock"
DAEMON_ENGINES = ("postgres",)

# engine name -> module with `open_engine(DatabaseConfig, create)`
ENGINES = {
    "sqlite": "pycni.plugins.ipam.sql.sqlite",
    "postgres": "pycni.plugins.ipam.sql.postgres",
}


def _invalid(msg: str) -> CNIError:
    return CNIError(ERR_INVALID_NETWORK_CONFIG, msg)


class DatabaseConfig:
    """Which engine and where; all a DEL or GC needs besides the names.
    `path` is SQLite's file, `dsn` PostgreSQL's conninfo (may hold a
    password: messages name the database by `label`)."""

    __slots__ = ("dsn", "engine", "path")

    def __init__(self, engine: str, path: str, dsn: str = "") -> None:
        self.engine = engine
        self.path = path
        self.dsn = dsn

    @property
    def label(self) -> str:
        """The database as messages name it: the path, or the dsn with
        its password masked."""
        return mask_dsn(self.dsn) if self.engine == "postgres" else self.path


class SqlConfig:
    """A validated sql IPAM configuration."""

    __slots__ = (
        "block_sizes",
        "cni_version",
        "database",
        "dns",
        "name",
        "node",
        "range_sets",
        "requested",
        "resolv_conf",
        "routes",
    )

    def __init__(self, name: str, node: str, database: DatabaseConfig, cni_version: str) -> None:
        self.name = name
        self.node = node
        self.database = database
        self.cni_version = cni_version
        self.range_sets: list[RangeSet] = []
        self.block_sizes: list[int] = []
        self.requested: list[tuple[int, int]] = []
        self.routes: list[Route] = []
        self.dns: DNS | None = None
        self.resolv_conf = ""


def load_store(conf: dict) -> SqlConfig:
    """Network, node and database only: enough for DEL and GC, which must
    work even after the ranges of a config went bad."""
    ipam = ipam_section(conf)
    name = ci_get(conf, "name")
    if not isinstance(name, str) or not name:
        raise _invalid("missing network name")
    version = ci_get(conf, "cniVersion")
    return SqlConfig(
        name,
        _node(ipam),
        _database(ipam),
        version if isinstance(version, str) else "",
    )


def load(conf: dict, cni_args: str = "", cni_version: str | None = None) -> SqlConfig:
    """The full configuration of ADD, CHECK and STATUS; raises CNIError."""
    from pycni.plugins.ipam.host_local import config as hl
    from pycni.plugins.pkg.ipamconf import parse_routes
    from pycni.plugins.pkg.netconf import parse_dns

    cfg = load_store(conf)
    ipam = ipam_section(conf)
    if cni_version is not None:
        cfg.cni_version = cni_version
    cfg.routes = parse_routes(ipam)
    cfg.dns = parse_dns(ipam)
    cfg.resolv_conf = hl.string_key(ipam, "resolvConf")
    runtime = hl.object_key(conf, "runtimeConfig")
    cfg.requested = hl.requested_ips(conf, runtime, cni_args)
    cfg.range_sets = hl.range_sets(ipam, runtime, cfg.cni_version or "0.1.0")
    cfg.block_sizes = [_block_size(ipam, i, s) for i, s in enumerate(cfg.range_sets)]
    return cfg


def _node(ipam: dict) -> str:
    node = ci_get(ipam, "node")
    if node is None or node == "":
        import os

        return os.uname().nodename
    if not isinstance(node, str):
        raise _invalid(f"invalid ipam.node: expected a string, got {json_kind(node)} {node!r}")
    if "\0" in node or len(node) > 253:
        raise _invalid(f"invalid ipam.node {node!r}: not a node name")
    return node


def _database(ipam: dict) -> DatabaseConfig:
    db = ci_get(ipam, "database")
    if db is None:
        db = {}
    if not isinstance(db, dict):
        raise _invalid(f"invalid ipam.database: expected an object, got {json_kind(db)} {db!r}")
    engine = ci_get(db, "engine")
    if engine is None or engine == "":
        engine = DEFAULT_ENGINE
    if not isinstance(engine, str):
        raise _invalid(
            f"invalid ipam.database.engine: expected a string, got {json_kind(engine)} {engine!r}"
        )
    if engine not in ENGINES:
        raise _invalid(
            f"invalid ipam.database.engine {engine!r}: this version supports "
            + ", ".join(sorted(ENGINES))
        )
    if engine == "postgres":
        return _postgres(db)
    path = ci_get(db, "path")
    if path is None or path == "":
        path = DEFAULT_PATH
    if not isinstance(path, str):
        raise _invalid(
            f"invalid ipam.database.path: expected a string, got {json_kind(path)} {path!r}"
        )
    if "\0" in path:
        raise _invalid("invalid ipam.database.path: contains a NUL character")
    if not path.startswith("/"):
        raise _invalid(f"invalid ipam.database.path {path!r}: it must be an absolute path")
    return DatabaseConfig(engine, path)


def _postgres(db: dict) -> DatabaseConfig:
    dsn = ci_get(db, "dsn")
    if dsn is None or dsn == "":
        raise _invalid(
            "missing ipam.database.dsn: the postgres engine needs a libpq connection string, "
            'e.g. "host=/run/postgresql dbname=cni user=cni"'
        )
    if not isinstance(dsn, str):
        kind = json_kind(dsn)
        raise _invalid(f"invalid ipam.database.dsn: expected a string, got {kind}")
    if "\0" in dsn:
        raise _invalid("invalid ipam.database.dsn: contains a NUL character")
    if ci_get(db, "path") not in (None, ""):
        raise _invalid(
            "invalid ipam.database.path: the postgres engine takes ipam.database.dsn, "
            "path is the sqlite engine's"
        )
    return DatabaseConfig("postgres", "", dsn)


def mask_dsn(dsn: str) -> str:
    """`dsn` with any password replaced by ***: the conninfo key
    `password=...` (quoted or not), a word without "=" (malformed, maybe
    the rest of an unquoted password) and a URI's `user:password@` or
    `?password=`."""
    if dsn.startswith(("postgresql://", "postgres://")):
        scheme, _, rest = dsn.partition("://")
        cut = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
        netloc, tail = rest[:cut], rest[cut:]
        userinfo, at, hosts = netloc.rpartition("@")
        if at and ":" in userinfo:
            netloc = userinfo.partition(":")[0] + ":***@" + hosts
        path, q, query = tail.partition("?")
        if q:
            params = [
                "password=***" if p.partition("=")[0].lower() == "password" else p
                for p in query.split("&")
            ]
            query = "&".join(params)
        return f"{scheme}://{netloc}{path}{q}{query}"
    out, i, n = [], 0, len(dsn)
    while i < n:
        if dsn[i].isspace():
            out.append(dsn[i])
            i += 1
            continue
        start = i
        while i < n and dsn[i] != "=" and not dsn[i].isspace():
            i += 1
        key = dsn[start:i]
        while i < n and dsn[i].isspace():
            i += 1
        if i >= n or dsn[i] != "=":
            out.append("***")  # malformed: maybe the tail of a password with a space
            continue
        i += 1
        while i < n and dsn[i].isspace():
            i += 1
        vstart = i
        if i < n and dsn[i] == "'":
            i += 1
            while i < n and dsn[i] != "'":
                i += 2 if dsn[i] == "\\" else 1
            i += 1
        else:
            while i < n and not dsn[i].isspace():
                i += 2 if dsn[i] == "\\" else 1
        value = "***" if key == "password" else dsn[vstart:i]
        out.append(f"{key}={value}")
    return "".join(out)


def _block_size(ipam: dict, idx: int, rset: RangeSet) -> int:
    """The block prefix of range set `idx`, checked against its subnets."""
    family = rset.family
    largest = max(r.subnet.prefixlen for r in rset.ranges)
    value = ci_get(ipam, "blockSize")
    where = "ipam.blockSize"
    if isinstance(value, dict):
        where = f"ipam.blockSize.ipv{family}"
        value = ci_get(value, f"ipv{family}")
    if value is None:
        return max(DEFAULT_BLOCK[family], largest)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid(
            f"invalid {where}: expected a prefix length, got {json_kind(value)} {value!r}"
        )
    bits = 32 if family == 4 else 128
    if not largest <= value <= bits:
        raise _invalid(
            f"invalid {where} {value}: range set {idx} needs a prefix length "
            f"between {largest} (its subnet) and {bits}"
        )
    return value


def daemon_socket_path(ipam: dict) -> str:
    """`ipam.daemonSocketPath`: where the node daemon listens (an engine of
    DAEMON_ENGINES); an absolute path, DEFAULT_SOCKET_PATH when unset."""
    value = ci_get(ipam, "daemonSocketPath")
    if value is None or value == "":
        return DEFAULT_SOCKET_PATH
    if not isinstance(value, str):
        raise _invalid(
            f"invalid ipam.daemonSocketPath: expected a string, got {json_kind(value)} {value!r}"
        )
    if "\0" in value or not value.startswith("/"):
        raise _invalid(f"invalid ipam.daemonSocketPath {value!r}: it must be an absolute path")
    return value
