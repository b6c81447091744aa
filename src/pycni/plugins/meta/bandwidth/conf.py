"""The bandwidth plugin's configuration, decoded as the reference decodes it.

The four keys `ingressRate`, `ingressBurst`, `egressRate`, `egressBurst`
(rates in bits/s, bursts in bits; Go uint64) can be given at the top level
or in `runtimeConfig.bandwidth` (the `bandwidth` capability). As in the
reference, where the top-level block is embedded as a pointer, any of the
four at the top level -- even `null` -- makes the top-level block the one
used and the runtime's ignored. Both blocks are decoded (a wrong type in
either is an error, as in Go), only the chosen one is validated: rate and
burst both set or both 0 per direction, and burst/8 below 2^32-1 ("burst
cannot be more than 4GB"). Every error is code 7 and names the key and the
value. Unknown keys, `shapedSubnets`/`unshapedSubnets` among them, are
ignored as in the reference 1.1.1.
"""

from __future__ import annotations

from pycni.plugins.pkg import netconf
from pycni.plugins.pkg.netconf import invalid
from pycni.spec.jsonutil import ci_get, fold_key, json_kind

#: the TBF latency the reference uses
LATENCY_MS = 25
KEYS = ("ingressRate", "ingressBurst", "egressRate", "egressBurst")
_FOLDED = {fold_key(k): k for k in KEYS}
_MAX_UINT64 = (1 << 64) - 1
_MAX_UINT32 = (1 << 32) - 1


class Direction:
    """One direction's limit: `rate` in bits/s and `burst` in bits, and the
    keys they came from (for error messages)."""

    __slots__ = ("burst", "burst_key", "rate", "rate_key")

    def __init__(self, rate: int, burst: int, rate_key: str, burst_key: str) -> None:
        self.rate = rate
        self.burst = burst
        self.rate_key = rate_key
        self.burst_key = burst_key

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0

    @property
    def rate_bytes(self) -> int:
        return self.rate // 8

    @property
    def burst_bytes(self) -> int:
        return self.burst // 8


class BandwidthConf(netconf.NetConf):
    """The decoded config; `source` is "" (top level), "runtimeConfig.bandwidth."
    or None when there is no bandwidth block at all."""

    __slots__ = ("egress", "ingress", "source")

    source: str | None
    ingress: Direction
    egress: Direction

    @property
    def is_zero(self) -> bool:
        """Nothing to shape: the reference passes prevResult through."""
        return not (
            self.ingress.rate or self.ingress.burst or self.egress.rate or self.egress.burst
        )


def load(conf: dict) -> BandwidthConf:
    """Decode and validate; CNIError code 7 naming the key and the value."""
    n = BandwidthConf(conf)
    top, top_present = _entry(conf, "")
    runtime = None
    rc = _object(conf, "runtimeConfig", "runtimeConfig")
    if rc is not None:
        bw = _object(rc, "bandwidth", "runtimeConfig.bandwidth")
        if bw is not None:
            runtime, _ = _entry(bw, "runtimeConfig.bandwidth.")
    if top_present:
        values, n.source = top, ""
    elif runtime is not None:
        values, n.source = runtime, "runtimeConfig.bandwidth."
    else:
        values, n.source = {k: 0 for k in KEYS}, None
    p = n.source or ""
    n.ingress = Direction(
        values["ingressRate"], values["ingressBurst"], p + "ingressRate", p + "ingressBurst"
    )
    n.egress = Direction(
        values["egressRate"], values["egressBurst"], p + "egressRate", p + "egressBurst"
    )
    if n.source is not None:
        validate(n.ingress)
        validate(n.egress)
    return n


def _object(d: dict, key: str, path: str) -> dict | None:
    value = ci_get(d, key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid(f'"{path}": cannot unmarshal {json_kind(value)} into Go value of type struct')
    return value


def _entry(d: dict, prefix: str) -> tuple[dict, bool]:
    """The four keys of one block (0 when absent, Go's uint64 decoding
    otherwise) and whether any of them is present at all. As in Go, the
    last of keys equal up to case wins, and null changes nothing."""
    values = {k: 0 for k in KEYS}
    present = False
    for key, value in d.items():
        name = _FOLDED.get(fold_key(key))
        if name is None:
            continue
        present = True
        if value is not None:
            values[name] = _uint64(prefix + name, value)
    return values, present


def _uint64(key: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise invalid(f'"{key}": cannot unmarshal {json_kind(value)} into Go value of type uint64')
    if value < 0 or value > _MAX_UINT64:
        raise invalid(
            f'"{key}": cannot unmarshal number {value} into Go value of type uint64 '
            f"(must be between 0 and {_MAX_UINT64})"
        )
    return value


def validate(d: Direction) -> None:
    """The reference's validateRateAndBurst, naming the keys."""
    if d.burst == 0 and d.rate != 0:
        raise invalid(
            f'invalid "{d.rate_key}" {d.rate}: if rate is set, burst must also be set '
            f'("{d.burst_key}" is 0)'
        )
    if d.rate == 0 and d.burst != 0:
        raise invalid(
            f'invalid "{d.burst_key}" {d.burst}: if burst is set, rate must also be set '
            f'("{d.rate_key}" is 0)'
        )
    if d.burst // 8 >= _MAX_UINT32:
        raise invalid(
            f'invalid "{d.burst_key}" {d.burst}: burst cannot be more than 4GB '
            f"(at most {_MAX_UINT32 * 8 - 1} bits)"
        )


def expected_shape(d: Direction, tick: float) -> tuple[int, int, int]:
    """(rate bytes/s, buffer ticks, limit bytes) of the TBF for `d`, as the
    reference computes them (latency 25 ms)."""
    from pycni.kernel.tc import latency_in_usec, tbf_buffer, tbf_limit

    rate, burst = d.rate_bytes, d.burst_bytes
    return (
        rate,
        tbf_buffer(rate, burst, tick),
        tbf_limit(rate, latency_in_usec(LATENCY_MS), burst),
    )


def shape_for_kernel(d: Direction, tick: float) -> tuple[int, int, int]:
    """expected_shape of an enabled direction, refusing what the kernel would.

    Rates under 8 bits/s (0 bytes/s) and bursts sent in under a microsecond
    give a zero buffer, which the kernel refuses (EINVAL) -- the reference
    fails there too, but only after the steps before it; here it is a config
    error before anything is touched."""
    shape = expected_shape(d, tick)
    if shape[0] == 0:
        raise invalid(
            f'invalid "{d.rate_key}" {d.rate}: below 8 bits/s, which is 0 bytes/s '
            "and cannot be shaped"
        )
    if shape[1] == 0:
        raise invalid(
            f'invalid "{d.burst_key}" {d.burst}: at "{d.rate_key}" {d.rate} the burst '
            "lasts less than a microsecond, which the kernel cannot shape"
        )
    return shape
