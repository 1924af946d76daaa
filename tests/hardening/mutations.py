"""Hypothesis strategies that take a reference payload and break it the ways a hostile or clumsy sender
would: a value of another type, size or encoding, a missing key, deep nesting, huge ids, NUL bytes."""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import strategies as st

NASTY_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "\x00", "a\x00b", "<!channel>", "@here", "```", "/close", "\ud7ff\ufffd", "é" * 300,
                     "<!-- triage-request: 99999999999999999999 -->", "x" * 5000, "123", "-1", "1e400",
                     "2026-02-30", "null", "{}", "[]", "V" + "9" * 80]),
)
NASTY_INT = st.one_of(st.integers(min_value=-(2**70), max_value=2**70),
                      st.sampled_from([0, -1, 2**31, 2**63, 10**20, 10**100]))
SCALAR = st.one_of(st.none(), st.booleans(), NASTY_INT, st.floats(allow_nan=False), NASTY_TEXT)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                     max_leaves=6)


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside `value` (dict keys and list indexes)."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value[:5]):
            out += paths(v, (*prefix, i))
    return out


def _set(doc: Any, path: tuple, new: Any, delete: bool = False) -> Any:
    if not path:
        return new
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        parent.pop(path[-1], None)
    else:
        parent[path[-1]] = new
    return doc


@st.composite
def mutated(draw, base: dict[str, Any], *, max_changes: int = 3, focus: tuple[tuple, ...] = ()) -> dict[str, Any]:
    """`base` with one to `max_changes` values replaced, deleted, wrapped or nested deep; paths under a
    `focus` prefix (the parts the app reads) are picked as often as all the others together."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, max_changes))):
        candidates = paths(doc)
        focused = [p for p in candidates if any(p[:len(f)] == f for f in focus)]
        if focused and draw(st.booleans()):
            candidates = focused
        path = draw(st.sampled_from(candidates))
        how = draw(st.sampled_from(["replace", "replace", "delete", "wrap", "deep", "stringify"]))
        old = _get(doc, path)
        if how == "replace":
            doc = _set(doc, path, draw(VALUE))
        elif how == "delete" and path:
            doc = _set(doc, path, None, delete=True)
        elif how == "wrap":
            doc = _set(doc, path, [old])
        elif how == "deep":
            doc = _set(doc, path, json.loads("[" * 80 + "]" * 80))
        elif how == "stringify":
            doc = _set(doc, path, json.dumps(old) if not isinstance(old, str) else old * 3)
        if not isinstance(doc, dict | list):
            break
    return doc


def _get(doc: Any, path: tuple) -> Any:
    for step in path:
        doc = doc[step]
    return doc


RAW_BREAKS = st.sampled_from(["truncate", "utf16", "latin1-bytes", "bom", "garbage"])


def break_raw(raw: bytes, how: str) -> bytes:
    if how == "truncate":
        return raw[: len(raw) // 2]
    if how == "utf16":
        return raw.decode("utf-8").encode("utf-16")
    if how == "latin1-bytes":
        return raw.replace(b'"', b'"\xe9', 1)
    if how == "bom":
        return b"\xef\xbb\xbf" + raw
    return b"\x00\xff" * 10
