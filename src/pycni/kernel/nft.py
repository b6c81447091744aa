"""nftables through the `nft` command: one `nft -f -` transaction per operation.

Scripts and JSON documents are built here and handed to nft on stdin; the
argv is a fixed list, never a shell line, so no user data reaches a shell.
Text scripts are used where the JSON syntax of older nft releases drops
information (table and chain comments); every string interpolated into a
text script goes through `quote()`, which refuses what nft cannot carry.

`subprocess` is imported on first use only: a plugin that never needs
nftables never pays for it.
"""

from __future__ import annotations

import os

NFT = "nft"
# knftables.CommentLengthMax: the kernel keeps at most 128 bytes of a comment.
COMMENT_MAX = 128


class NftError(OSError):
    """`nft` failed: `.returncode`, `.stderr`, `.op` (what was attempted)."""

    def __init__(self, op: str, returncode: int, stderr: str) -> None:
        super().__init__(returncode, stderr)
        self.op = op
        self.returncode = returncode
        self.stderr = stderr.strip()

    @property
    def not_found(self) -> bool:
        """The table, chain or rule named did not exist (knftables.IsNotFound)."""
        return "No such file or directory" in self.stderr

    def __str__(self) -> str:
        text = self.stderr.splitlines()[0] if self.stderr else f"exit status {self.returncode}"
        return f"{self.op}: {text}" if self.op else text


def _run(argv: list[str], stdin: bytes | None, op: str) -> bytes:
    import subprocess

    try:
        proc = subprocess.run(
            argv, input=stdin, capture_output=True, timeout=60, close_fds=True, env=_env()
        )
    except FileNotFoundError:
        raise NftError(op, 127, f"{argv[0]}: command not found")
    except subprocess.TimeoutExpired:
        raise NftError(op, 124, f"{argv[0]} timed out after 60 seconds")
    if proc.returncode != 0:
        raise NftError(op, proc.returncode, proc.stderr.decode("utf-8", "replace"))
    return proc.stdout


def _env() -> dict:
    # A predictable C locale keeps nft's error texts matchable.
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    return env


def quote(text: str) -> str:
    """A double-quoted nft string; ValueError for what nft cannot quote."""
    if not isinstance(text, str):
        raise ValueError(f"not a string: {text!r}")
    for ch in text:
        if ch == '"' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            raise ValueError(f"cannot use {text!r} in an nftables script")
    return f'"{text}"'


def truncate_comment(comment: str) -> str:
    """Cut a comment to the kernel's limit (bytes), without splitting a character."""
    raw = comment.encode("utf-8", "surrogateescape")
    if len(raw) <= COMMENT_MAX:
        return comment
    return raw[:COMMENT_MAX].decode("utf-8", "ignore")


def run(script: str, op: str = "nft transaction") -> None:
    """Apply a text script as one atomic transaction (`nft -f -`)."""
    _run([NFT, "-f", "-"], script.encode("utf-8", "surrogateescape"), op)


def run_json(commands: list, op: str = "nft transaction") -> None:
    """Apply a JSON command list as one atomic transaction (`nft -j -f -`)."""
    from pycni.spec.jsonutil import go_dumps

    _run([NFT, "-j", "-f", "-"], go_dumps({"nftables": commands}, indent=False).encode(), op)


def list_json(*what: str, op: str = "") -> list:
    """`nft -j list <what...>` as the list of objects (metainfo dropped).

    Raises NftError (check `.not_found`) when the object does not exist.
    """
    from pycni.spec.jsonutil import go_loads

    out = _run([NFT, "-j", "list", *what], None, op or "list " + " ".join(what))
    try:
        doc = go_loads(out or b"{}")
    except ValueError as err:
        raise NftError(op or "nft list", 0, f"cannot decode nft JSON output: {err}")
    items = doc.get("nftables", []) if isinstance(doc, dict) else []
    return [item for item in items if isinstance(item, dict) and "metainfo" not in item]


def rules_of(items: list) -> list[dict]:
    """The rule objects of a `list_json` answer."""
    return [item["rule"] for item in items if isinstance(item.get("rule"), dict)]


def available() -> bool:
    """Whether nftables can be used here (knftables' check: a dry-run add)."""
    try:
        _run([NFT, "--check", "add", "table", "ip", "supports_nftables_test"], None, "check")
    except NftError:
        return False
    return True


def binary_available() -> bool:
    return which(NFT) is not None


def which(name: str) -> str | None:
    """shutil.which without importing shutil."""
    for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(os.pathsep):
        path = os.path.join(d or ".", name)
        if os.access(path, os.X_OK) and not os.path.isdir(path):
            return path
    return None
