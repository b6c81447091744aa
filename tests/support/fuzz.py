"""Hypothesis strategies for the hostile-config tests of the plugins' config
decoders: JSON values made of every JSON type, nested under the keys a
decoder looks at (and a few it must ignore), so a decoder meets wrong types
at every depth."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

JSON_LEAF = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)


def json_values(
    inner_keys: st.SearchStrategy[str],
    leaves: Sequence[str] = (),
    list_size: int = 4,
    dict_size: int = 4,
    max_leaves: int = 12,
) -> st.SearchStrategy:
    """Any JSON value; objects inside it take their keys from `inner_keys`;
    `leaves` are strings worth meeting often (names, MACs, paths)."""
    leaf = st.one_of(JSON_LEAF, st.sampled_from(list(leaves))) if leaves else JSON_LEAF
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=list_size),
            st.dictionaries(inner_keys, inner, max_size=dict_size),
        ),
        max_leaves=max_leaves,
    )


def configs(
    keys: Sequence[str], nested: Sequence[str] = (), max_size: int = 6, **kw
) -> st.SearchStrategy[dict]:
    """Config documents: up to `max_size` of `keys`, each any JSON value
    whose nested objects use `keys` and `nested` (json_values' kw)."""
    value = json_values(st.sampled_from([*keys, *nested]), **kw)
    return st.dictionaries(st.sampled_from(list(keys)), value, max_size=max_size)
