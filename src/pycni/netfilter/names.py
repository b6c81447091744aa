"""The reference's hashed names and comments (pkg/utils), shared by every rule set.

They must stay byte-identical to the Go plugins' so that a host can move
between pycni and the reference without orphaning a chain.
"""

from __future__ import annotations

from pycni.spec.jsonutil import go_quote


def sha512(data: bytes):
    """SHA-512 from CPython's own builtin module: `hashlib` loads OpenSSL,
    about 3 ms of a plugin's start-up, for one short digest."""
    try:
        from _sha2 import sha512 as impl  # type: ignore[import-not-found]  # 3.12+
    except ImportError:
        try:
            from _sha512 import sha512 as impl  # type: ignore[import-not-found]  # 3.9-3.11
        except ImportError:  # a build without the builtin modules
            from hashlib import sha512 as impl
    return impl(data)


#: the kernel keeps at most 128 bytes of an nftables comment (knftables.CommentLengthMax)
NFT_COMMENT_MAX = 128


def format_hash_with_prefix(length: int, prefix: str, to_hash: str) -> str:
    """utils.MustFormatHashWithPrefix: (prefix + hex SHA-512)[:length]."""
    if len(prefix) >= length or length > 64:
        raise ValueError("invalid hash length or prefix")
    digest = sha512(to_hash.encode("utf-8", "surrogateescape")).hexdigest()
    return (prefix + digest)[:length]


def format_chain_name(name: str, container_id: str, prefix: str = "") -> str:
    """utils.FormatChainName: ("CNI-" + prefix + hex SHA-512(name + id))[:28]."""
    return format_hash_with_prefix(28, "CNI-" + prefix, name + container_id)


def format_comment(name: str, container_id: str) -> str:
    """utils.FormatComment: name: "<name>" id: "<id>"."""
    return f"name: {go_quote(name)} id: {go_quote(container_id)}"


def truncate_nft_comment(comment: str) -> str:
    """Cut a comment to the kernel's limit (bytes), without splitting a character."""
    raw = comment.encode("utf-8", "surrogateescape")
    if len(raw) <= NFT_COMMENT_MAX:
        return comment
    return raw[:NFT_COMMENT_MAX].decode("utf-8", "ignore")
