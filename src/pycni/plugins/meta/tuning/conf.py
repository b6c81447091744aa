"""The tuning plugin's configuration, decoded with the reference's semantics.

Keys match case-insensitively and a value of the wrong JSON type is code 7
naming the key. The MAC precedence is the reference's: `mac` < CNI_ARGS
`MAC` < `runtimeConfig.mac` < `args.cni.mac` (which wins even when empty);
`args.cni.{sysctl, promisc, mtu, allmulti, txQLen}` override the top-level
keys (sysctl entries are merged). Everything ADD will write is validated
here, before anything is touched: duplicate sysctl keys, the allow-list,
sysctl paths outside /proc/sys/net/, MACs, MTU and queue-length ranges.
"""

from __future__ import annotations

import os

from pycni.plugins.pkg import netconf
from pycni.plugins.pkg.netconf import invalid
from pycni.spec.errors import ERR_INTERNAL, ERR_INVALID_ENVIRONMENT_VARIABLES, CNIError
from pycni.spec.jsonutil import (
    Pairs,
    ci_get,
    fold_key,
    get_bool,
    get_dict,
    get_int,
    get_str,
    go_loads,
    go_quote,
    json_kind,
)

DEFAULT_DATA_DIR = "/run/cni/tuning"
#: The sysctl allow-list (the reference's path). When the file exists, every
#: sysctl key must match one of its non-empty lines, an unanchored regular
#: expression. Tests replace this constant in-process (monkeypatch) and run
#: the verbs through `skel.run`; there is no environment override, so the
#: policy cannot be switched off by whoever sets a plugin's environment.
ALLOWLIST_FILE = "/etc/cni/tuning/allowlist.conf"

_PROC_SYS = "/proc/sys/"
_NET = "/proc/sys/net/"
_MAX_MTU = (1 << 31) - 1
_MAX_TXQLEN = (1 << 32) - 1


class TuningConf(netconf.NetConf):
    """The decoded config. `sysctl` keeps the document's order (the
    reference iterates a Go map: any order)."""

    __slots__ = ("allmulti", "data_dir", "mac", "mtu", "promisc", "sysctl", "txqlen")

    sysctl: dict[str, str]
    mac: str  # lower-case colon form; "" when no MAC is asked for
    promisc: bool
    mtu: int  # 0: not set
    allmulti: bool | None
    txqlen: int | None
    data_dir: str

    @property
    def changes_link(self) -> bool:
        """Link attributes are set (and so backed up)."""
        return bool(
            self.mac
            or self.mtu
            or self.promisc
            or self.allmulti is not None
            or self.txqlen is not None
        )


def load(
    conf: dict, stdin_data: bytes, cni_args: str, ifname: str, allowlist: bool = True
) -> TuningConf:
    """Decode and validate the config for ADD and CHECK; raises CNIError
    (code 7 for the config, 4 for CNI_ARGS). CHECK passes `allowlist`
    False: it reads sysctls, and the reference checks the list on ADD only."""
    n = TuningConf(conf)
    n.data_dir = data_dir(conf)
    n.sysctl = _sysctls(stdin_data)
    mac, source = get_str(conf, "mac"), "mac"
    n.promisc = get_bool(conf, "promisc")
    n.mtu = get_int(conf, "mtu")
    n.allmulti = _opt(get_bool, conf, "allmulti", "")
    n.txqlen = _opt(get_int, conf, "txQLen", "")
    if cni_args:
        from pycni.spec.args import load_args  # only with CNI_ARGS: DEL never loads it

        env_mac = load_args(cni_args, {"MAC": "str"}).get("MAC")
        if env_mac:
            mac, source = str(env_mac), "CNI_ARGS MAC"
    rc = get_dict(conf, "runtimeConfig")
    if rc:
        value = _sub(get_str, rc, "mac", "runtimeConfig.")
        if value:
            mac, source = value, "runtimeConfig.mac"
    args = get_dict(conf, "args")
    cni = _sub(get_dict, args, "cni", "args.") if args else None
    if cni:
        extra = _sub(get_dict, cni, "sysctl", "args.cni.")
        if extra:
            for key, value in extra.items():
                if not isinstance(value, str):
                    raise invalid(
                        f'"args.cni.sysctl": cannot unmarshal {json_kind(value)} into Go value '
                        f"of type string (key {go_quote(key)})"
                    )
                n.sysctl[key] = value
        value = _opt(get_str, cni, "mac", "args.cni.")
        if value is not None:  # present wins, even "" (the reference's pointer)
            mac, source = value, "args.cni.mac"
        n.promisc = _opt(get_bool, cni, "promisc", "args.cni.", n.promisc)
        n.mtu = _opt(get_int, cni, "mtu", "args.cni.", n.mtu)
        n.allmulti = _opt(get_bool, cni, "allmulti", "args.cni.", n.allmulti)
        n.txqlen = _opt(get_int, cni, "txQLen", "args.cni.", n.txqlen)
    n.mac = _mac(mac, source) if mac else ""
    if not 0 <= n.mtu <= _MAX_MTU:
        raise invalid(f'invalid "mtu" {n.mtu}: must be between 0 and {_MAX_MTU}')
    if n.txqlen is not None and not 0 <= n.txqlen <= _MAX_TXQLEN:
        raise invalid(f'invalid "txQLen" {n.txqlen}: must be between 0 and {_MAX_TXQLEN}')
    if allowlist:
        check_allowlist(n.sysctl)
    for key in n.sysctl:
        sysctl_path(key, ifname)
    return n


def data_dir(conf: dict) -> str:
    """`dataDir` (the backup files' folder); all DEL, GC and STATUS read."""
    return get_str(conf, "dataDir") or DEFAULT_DATA_DIR


def _sub(getter, d: dict, key: str, prefix: str):
    """getter(d, key) with the key's full path in the error message."""
    try:
        return getter(d, key)
    except CNIError as err:
        if not prefix:
            raise
        raise CNIError(err.code, err.msg.replace(f'"{key}"', f'"{prefix}{key}"', 1), err.details)


def _opt(getter, d: dict, key: str, prefix: str, default=None):
    """A key that may be absent (the reference's pointer fields): `default`
    when absent or null."""
    if ci_get(d, key) is None:
        return default
    return _sub(getter, d, key, prefix)


def _mac(mac: str, source: str) -> str:
    """The MAC in the kernel's text form; net.ParseMAC's forms are accepted."""
    from pycni.spec.ipnet import parse_mac  # a MAC configured: ADD or CHECK only

    try:
        return parse_mac(mac)
    except ValueError:
        code = ERR_INVALID_ENVIRONMENT_VARIABLES if source.startswith("CNI_ARGS") else None
        msg = f"invalid MAC address {go_quote(mac)} (from {source})"
        if code is not None:
            raise CNIError(code, msg, "CNI_ARGS")
        raise invalid(msg)


def _sysctls(stdin_data: bytes) -> dict[str, str]:
    """The top-level `sysctl` map. Read from the document itself, not from
    the decoded dict: a key given twice is an error (the reference refuses
    duplicated keys; a dict would keep the last silently), and every key
    that matches "sysctl" case-insensitively adds to the map, as Go decodes
    them all into the one field (a null resets it)."""
    try:
        doc = go_loads(stdin_data, pairs=True)
    except ValueError as err:  # skel decoded it already; be safe anyway
        raise invalid(f"failed to load netconf: {err}")
    out: dict[str, str] = {}
    seen: set[str] = set()
    if not isinstance(doc, Pairs):
        return out
    for name, value in doc:
        if fold_key(name) != "sysctl":
            continue
        if value is None:
            out = {}
            continue
        if not isinstance(value, Pairs):
            raise invalid(
                f'"sysctl": cannot unmarshal {_kind(value)} into Go value of type map[string]string'
            )
        for key, item in value:
            if key in seen:
                raise invalid(
                    f"duplicated sysctl keys are not allowed: {go_quote(key)} is given twice"
                )
            seen.add(key)
            if not isinstance(item, str):
                raise invalid(
                    f'"sysctl": cannot unmarshal {_kind(item)} into Go value of type string '
                    f"(key {go_quote(key)})"
                )
            out[key] = item
    return out


def _kind(value: object) -> str:
    return "object" if isinstance(value, Pairs) else json_kind(value)


def sysctl_path(key: str, ifname: str) -> str:
    """The /proc/sys file of a sysctl key, as the reference computes it:
    every "." becomes "/", then the first "IFNAME" becomes the interface
    name, and the cleaned path must lie under /proc/sys/net/ (so "kernel.x",
    "net" itself and anything that climbs out with ".." are refused)."""
    rel = key.replace(".", "/").replace("IFNAME", ifname, 1)
    path = os.path.normpath(_PROC_SYS + rel)
    if "\0" in rel or not path.startswith(_NET):
        raise invalid(f"invalid net sysctl key: {go_quote(rel)}")
    return path


def sysctl_name(path: str) -> str:
    """The name under /proc/sys/ of a path from sysctl_path ("net/...")."""
    return path[len(_PROC_SYS) :]


def check_allowlist(sysctls: dict[str, str]) -> None:
    """Refuse sysctl keys the host's allow-list does not match (no file: no
    restriction). Each line is a regular expression searched for in the key
    as written in the config (before IFNAME is replaced)."""
    if not sysctls:
        return
    try:
        with open(ALLOWLIST_FILE, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        return
    except OSError as err:
        raise CNIError(
            ERR_INTERNAL, f"failed to read the sysctl allow-list {ALLOWLIST_FILE}: {err.strerror}"
        )
    patterns = [line.strip() for line in text.split("\n") if line.strip()]
    import re

    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern))
        except re.error as err:
            raise CNIError(
                ERR_INTERNAL,
                f"invalid regular expression {go_quote(pattern)} in the sysctl allow-list "
                f"{ALLOWLIST_FILE}: {err}",
            )
    for key in sysctls:
        if not any(c.search(key) for c in compiled):
            raise invalid(
                f"Sysctl {key} is not allowed. Only the following sysctls are allowed: "
                f"[{' '.join(patterns)}]"
            )
