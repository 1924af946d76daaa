"""The JSON limits: no NUL or lone surrogate in what we read, nothing nested past MAX_JSON_DEPTH, and
the cheap check on the text (within_limits) never lets through what the walk (clean) would change or refuse."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.core.json_limits import MAX_JSON_DEPTH, BadJSON, clean, loads, within_limits

# Strings heavy in what the text check has to see through: quotes, backslashes, brackets, NULs, lone
# surrogates, and a character outside the BMP (a surrogate pair when escaped).
tricky_text = st.text(alphabet=st.sampled_from([*'ab"\\[]{}\x00u0/\n é😀d8', "\ud800", "\udfff"]),
                      max_size=8)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(tricky_text, inner, max_size=3),
    max_leaves=30,
)


def depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    return 0


def has_text(value, pred) -> bool:
    if isinstance(value, str):
        return pred(value)
    if isinstance(value, list):
        return any(has_text(v, pred) for v in value)
    if isinstance(value, dict):
        return any(has_text(k, pred) or has_text(v, pred) for k, v in value.items())
    return False


def has_nul(value) -> bool:
    return has_text(value, lambda s: "\x00" in s)


def unfit(value) -> bool:
    """A NUL or a lone surrogate: what no string we keep may hold."""
    return has_text(value, lambda s: "\x00" in s or any("\ud800" <= c <= "\udfff" for c in s))


def nested(levels: int, leaf=1, inner: str = "[]"):
    value = leaf
    for i in range(levels):
        value = [value] if inner[i % len(inner)] == "[" else {"k": value}
    return value


@settings(max_examples=500, deadline=None)
@given(json_values, st.booleans())
def test_the_text_check_only_passes_what_the_walk_would_leave_alone(value, ascii_only):
    text = json.dumps(value, ensure_ascii=ascii_only)
    if within_limits(text):
        assert not unfit(value) and depth(value) <= MAX_JSON_DEPTH
        assert clean(copy.deepcopy(value)) == value
    elif not unfit(value) and not (ascii_only and has_text(value, lambda s: "😀" in s)):
        # Without a NUL or a surrogate, only depth sends a payload to the walk, and never a shallow one.
        assert depth(value) > MAX_JSON_DEPTH // 2
    assert not unfit(clean(copy.deepcopy(value)))


@pytest.mark.parametrize("inner", ["[", "{", "[{", "{["])
def test_depth_is_judged_on_the_structure_whatever_the_brackets(inner):
    shallow, deep = nested(MAX_JSON_DEPTH // 2, inner=inner), nested(MAX_JSON_DEPTH + 1, inner=inner)
    assert within_limits(json.dumps(shallow))
    assert not within_limits(json.dumps(deep))
    assert loads(json.dumps(nested(MAX_JSON_DEPTH, inner=inner))) == nested(MAX_JSON_DEPTH, inner=inner)
    with pytest.raises(BadJSON, match="nested deeper"):
        loads(json.dumps(deep))


def test_brackets_and_escapes_inside_strings_are_text_not_structure():
    value = {"a": "[" * 200, "b": '\\"{{{{', "c": "\\\\", "d": ['"]]]}}}'] * 3}
    assert within_limits(json.dumps(value)) and within_limits(json.dumps(value, ensure_ascii=False))


def test_a_nul_anywhere_goes_to_the_walk_which_removes_it():
    for value in ({"t": "a\x00b"}, {"k\x00": 1}, [["x", "\x00"]]):
        text = json.dumps(value)
        assert not within_limits(text)
        assert not has_nul(loads(text))
    assert loads(json.dumps({"note": "\\u0000 typed as text"})) == {"note": "\\u0000 typed as text"}


def test_a_lone_surrogate_becomes_a_replacement_character_and_a_pair_stays_what_it_is():
    # JSON may escape half a character (`\ud800`); no driver can encode it, so it is replaced, not stored.
    text = r'{"name": "Acme\ud800 Corp", "\udc00k": ["\ud83d\ude00", "ok"]}'
    assert not within_limits(text)
    assert loads(text) == {"name": "Acme\ufffd Corp", "\ufffdk": ["😀", "ok"]}
    assert loads(text.encode()) == loads(text)
    assert within_limits(json.dumps({"name": "Acme 😀"}, ensure_ascii=False))


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16", "utf-32", "utf-32-be"])
def test_bodies_in_utf16_or_utf32_which_json_also_reads_go_to_the_walk(encoding):
    # Their zero bytes hide the escapes the text check looks for; a GitLab route hands the raw body over.
    with_nul = r'{"a": "x\u0000y"}'.encode(encoding)
    deep = (r'["\"", ' + "[" * 200 + "]" * 200 + r', "\""]').encode(encoding)
    assert not within_limits(with_nul) and not within_limits(deep)
    assert loads(with_nul) == {"a": "xy"}
    with pytest.raises(BadJSON, match="nested deeper"):
        loads(deep)
