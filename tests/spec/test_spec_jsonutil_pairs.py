"""go_loads(pairs=True): objects as ordered (key, value) pairs, repeated
keys kept, so that a plugin can refuse duplicates as Go's decoders do."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pycni.spec.jsonutil import Pairs, go_loads


def plain(value):
    """A Pairs tree back to dicts (the last of a repeated key wins)."""
    if isinstance(value, Pairs):
        return {k: plain(v) for k, v in value}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def test_repeated_keys_are_kept_in_order():
    doc = go_loads(b'{"a": 1, "b": {"x": [], "x": {}}, "a": 2}', pairs=True)
    assert isinstance(doc, Pairs)
    assert [k for k, _ in doc] == ["a", "b", "a"]
    inner = doc[1][1]
    assert isinstance(inner, Pairs) and [k for k, _ in inner] == ["x", "x"]
    assert type(inner[0][1]) is list and isinstance(inner[1][1], Pairs)


def test_without_pairs_objects_are_dicts():
    assert go_loads(b'{"a": 1, "a": 2}') == {"a": 2}


def test_arrays_are_plain_lists():
    doc = go_loads(b"[[], {}]", pairs=True)
    assert type(doc) is list and type(doc[0]) is list and isinstance(doc[1], Pairs)


def test_deep_documents_keep_pairs_too():
    depth = 3000  # beyond the C scanner's recursion
    text = '{"k":' * depth + '{"d": 1, "d": [{"e": 2}]}' + "}" * depth
    doc = go_loads(text, pairs=True)
    for _ in range(depth):
        assert isinstance(doc, Pairs) and doc[0][0] == "k"
        doc = doc[0][1]
    assert doc == [("d", 1), ("d", [[("e", 2)]])]
    assert isinstance(doc[1][1][0], Pairs)


@pytest.mark.parametrize("text", ["{", '{"a" 1}', "[1,]", '{"a": NaN}', "{} x"])
def test_errors_are_the_same_as_without_pairs(text):
    with pytest.raises(ValueError) as plain_err:
        go_loads(text)
    with pytest.raises(ValueError) as pairs_err:
        go_loads(text, pairs=True)
    assert str(plain_err.value) == str(pairs_err.value)


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(value=json_values)
def test_pairs_hold_the_same_document(value):
    text = json.dumps(value)
    assert plain(go_loads(text, pairs=True)) == go_loads(text)
