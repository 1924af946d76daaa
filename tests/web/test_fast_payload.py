"""The route's own decoding of interactivity bodies gives exactly what Bolt's parse gives once the JSON
limits are applied (NUL characters removed, depth bounded), or steps aside."""

from __future__ import annotations

import copy
import json
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt.request.internals import parse_body

from triage.core.json_limits import MAX_JSON_DEPTH, BadJSON, check_text, clean
from triage.web.slack_routes import fast_payload

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=6), st.booleans(), st.booleans())
def test_same_payload_as_bolt(payload, ascii_only, plus_for_space):
    text = json.dumps(payload, ensure_ascii=ascii_only)
    raw = (urlencode({"payload": text}) if plus_for_space else "payload=" + quote(text, safe="")).encode()
    # What the listeners read: Bolt's parse with the JSON limits applied (NUL characters removed).
    assert fast_payload(raw) == clean(parse_body(raw.decode(), "application/x-www-form-urlencoded")) \
        == clean(copy.deepcopy(payload))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_odd_bodies_step_aside_or_agree(tail):
    raw = b"payload=" + tail
    got = fast_payload(raw)
    if got is not None:  # only when the body really is a form-encoded JSON object
        assert got == clean(parse_body(raw.decode("utf-8"), "application/x-www-form-urlencoded"))


def test_other_shapes_go_to_bolt():
    assert fast_payload(b"command=%2Fsa-sla&text=") is None  # a slash command
    assert fast_payload(b'{"type": "url_verification"}') is None  # an Events API JSON body
    assert fast_payload(b"payload=%7B%22a%22%3A1%7D&extra=1") is None
    assert fast_payload(b"payload=%5B1%5D") is None  # a list: Bolt's path refuses it with a clear 400
    assert fast_payload(b"payload=%7B%22a%22%3A%22%zz%22%7D") is None


def nested(depth: int, leaf: object) -> object:
    value = leaf
    for i in range(depth - 1):
        value = [value] if i % 2 else {"k[{": value}  # brackets inside strings don't count
    return value


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=MAX_JSON_DEPTH + 8), json_values, st.booleans())
def test_the_text_check_agrees_with_walking_the_value(depth, leaf, ascii_only):
    value = nested(depth, leaf)
    text = json.dumps(value, ensure_ascii=ascii_only)
    try:
        walked = clean(json.loads(text))
    except BadJSON:  # too deep: the text check refuses it, or says to clean it (and clean refuses it)
        try:
            needs_clean = check_text(text)
        except BadJSON:
            return
        assert needs_clean, "the text check passed JSON that is too deep"
        return
    if walked != json.loads(text):  # it held a NUL character: the text check must have said so
        assert check_text(text)


def test_a_nul_escape_and_the_depth_limit_are_seen_in_the_text():
    assert check_text(json.dumps({"a": "x\x00y"})) is True
    assert check_text(json.dumps({"a": "plain"})) is False
    assert check_text("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is False
    with pytest.raises(BadJSON):
        check_text("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
