"""CNI spec versions: parsing, comparison, negotiation and VERSION answers."""

from __future__ import annotations

CURRENT = "1.1.0"
ALL = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LEGACY = ("0.1.0", "0.2.0")


def parse(version: str) -> tuple[int, int, int]:
    """Parse like Go's version.ParseVersion: "" is 0.1.0, "1" is 1.0.0.

    Raises ValueError with Go's message; each part is read by Go's
    strconv.Atoi, so a sign is allowed and "1.0.0-rc1" is not.
    """
    if not isinstance(version, str):
        raise ValueError(f"invalid version {version!r}")
    if version == "":
        return (0, 1, 0)
    parts = version.split(".")
    if len(parts) >= 4:
        from pycni.spec.jsonutil import go_quote

        raise ValueError(f"invalid version {go_quote(version)}: too many parts")
    names = ("major", "minor", "micro")
    nums = [_atoi(part, name) for part, name in zip(parts, names)]
    while len(nums) < 3:
        nums.append(0)
    return (nums[0], nums[1], nums[2])


def _atoi(part: str, name: str) -> int:
    """Go's strconv.Atoi on one version part (64-bit range)."""
    digits = part[1:] if part.startswith(("+", "-")) else part
    problem = ""
    if not digits or not digits.isascii() or not digits.isdigit():
        problem = "invalid syntax"
    elif len(digits.lstrip("0")) > 19 or not -(1 << 63) <= int(part) < (1 << 63):
        problem = "value out of range"
    if problem:
        from pycni.spec.jsonutil import go_quote

        quoted = go_quote(part)
        raise ValueError(
            f"failed to convert {name} version part {quoted}: "
            f"strconv.Atoi: parsing {quoted}: {problem}"
        )
    return int(part)


def gte(a: str, b: str) -> bool:
    return parse(a) >= parse(b)


def gt(a: str, b: str) -> bool:
    return parse(a) > parse(b)


def versions_from(start: str) -> tuple[str, ...]:
    """The known versions from `start` on (empty if `start` is not known)."""
    return ALL[ALL.index(start) :] if start in ALL else ()


def select(cni_version: object, cni_versions: object) -> str:
    """Pick the list version as libcni's NetworkConfFromBytes does: the
    highest of `cniVersion` and `cniVersions` not above CURRENT; without
    `cniVersions`, `cniVersion` verbatim.  None means the key is absent.

    Raises ValueError with libcni's message on malformed input.
    """
    from pycni.spec.jsonutil import go_type

    if cni_version is None:
        cni_version = ""
    if not isinstance(cni_version, str):
        raise ValueError(f"invalid cniVersion type {go_type(cni_version)}")
    if cni_versions is None:
        return cni_version
    if not isinstance(cni_versions, list):
        raise ValueError(f"invalid type for cniVersions: {go_type(cni_versions)}")
    candidates: list[tuple[tuple[int, int, int], str]] = []
    for i, entry in enumerate(cni_versions):
        if not isinstance(entry, str):
            raise ValueError(f"invalid type for cniVersions index {i}: {go_type(entry)}")
        candidates.append((_parse_as(entry, f"cniVersions entry {entry} at index {i}"), entry))
    if cni_version:
        candidates.append((_parse_as(cni_version, f"cniVersion {cni_version}"), cni_version))
    limit = parse(CURRENT)
    usable = [c for c in candidates if c[0] <= limit]
    if not usable:
        return cni_version
    return max(usable)[1]


def _parse_as(version: str, what: str) -> tuple[int, int, int]:
    """parse(), with `what` named in the error."""
    try:
        return parse(version)
    except ValueError as err:
        raise ValueError(f"invalid {what}: {err}")


def version_info_json(supported: tuple[str, ...] | list[str]) -> str:
    """The VERSION answer, as Go's skel prints it (compact, newline)."""
    quoted = ",".join(f'"{v}"' for v in supported)
    return f'{{"cniVersion":"{CURRENT}","supportedVersions":[{quoted}]}}\n'


def decode_version_info(data: bytes | str) -> list[str]:
    """Decode a plugin's VERSION answer (libcni's PluginDecoder).

    Raises ValueError with libcni's "decoding version info: ..." messages.
    """
    from pycni.spec.jsonutil import ci_get, go_loads, json_kind

    try:
        info = go_loads(data)
    except ValueError as err:
        raise ValueError(f"decoding version info: {err}")
    if info is None:
        info = {}  # Go decodes null into the struct as a no-op
    if not isinstance(info, dict):
        raise ValueError(
            f"decoding version info: json: cannot unmarshal {json_kind(info)} "
            "into Go value of type version.pluginInfo"
        )
    cni_version = ci_get(info, "cniVersion")
    if cni_version is not None and not isinstance(cni_version, str):
        raise ValueError(
            f"decoding version info: json: cannot unmarshal {json_kind(cni_version)} "
            "into Go struct field pluginInfo.cniVersion of type string"
        )
    supported = ci_get(info, "supportedVersions")
    if supported is not None and not (
        isinstance(supported, list) and all(isinstance(v, str) for v in supported)
    ):
        raise ValueError(
            "decoding version info: json: cannot unmarshal "
            f"{json_kind(supported)} into Go struct field "
            "pluginInfo.supportedVersions of type []string"
        )
    if not cni_version:
        raise ValueError("decoding version info: missing field cniVersion")
    if not supported:
        if cni_version == "0.2.0":
            return ["0.1.0", "0.2.0"]
        raise ValueError("decoding version info: missing field supportedVersions")
    return list(supported)


def go_quote_list(items: list[str] | tuple[str, ...]) -> str:
    """Go's %q of a string slice: ["a" "b"]."""
    from pycni.spec.jsonutil import go_quote

    return "[" + " ".join(go_quote(i) for i in items) + "]"
