"""The route's own decoding of interactivity bodies gives exactly what Bolt's parse gives (NUL characters
removed, as the app reads all JSON), or steps aside."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_bolt.request.internals import parse_body

from triage.core.json_limits import clean
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
    # Read as the app reads JSON: Bolt's parse, with NUL characters removed.
    assert fast_payload(raw) == clean(parse_body(raw.decode(), "application/x-www-form-urlencoded"))
    assert fast_payload(raw) == clean(payload)


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


@pytest.mark.parametrize("raw", [
    b"payload=%7B%22a%22%3A%22b%3Dc%22%7D",  # an escaped `=` is text
    b"payload=%7b%22a%22%3a%22b%3dc%22%7d",  # lower-case hex, as some encoders write it
    b"payload=%7B%22a%22%3A%22caf\xc3\xa9 %E2%82%AC+x%2By%22%7D",  # raw UTF-8, `+` for space, `%2B` for `+`
    b"payload=%7B%22a%22%3A%22b=c%22%7D",  # a raw `=`: urllib keeps it, so the slow path decides
    b"payload=%7B%22a%22%3A%22b=\nc%22%7D",  # a raw line break after `=` (a soft break in quoted-printable)
    b"payload=%7B%22a%22%3A%22b\r\nc%22%7D",
    b"payload=%7B%22a%22%3A%22%4%22%7D",  # a `%` with one hex digit
    b"payload=%7B%22a%22%3A%22100%%22%7D",  # a `%` with none
])
def test_edge_bodies_agree_with_bolt_or_step_aside(raw):
    got = fast_payload(raw)
    try:
        want = clean(parse_body(raw.decode("utf-8"), "application/x-www-form-urlencoded"))
        want = json.loads(want) if isinstance(want, str) else want
    except ValueError:
        want = None
    if got is not None:
        assert got == want
    if b"=" not in raw[8:] and b"\n" not in raw and b"%4%" not in raw and b"%%" not in raw:
        assert got is not None  # the common shapes do take the fast path


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"%7B", b"%22", b"a", b"%3A", b"%7D", b"=", b"\n", b"%", b"%4", b"%zz", b"+",
                                 b"%2B", b"%3d", b"\xc3\xa9", b"\xff", b"%00", b"%5C", b"&"]), max_size=30))
def test_bodies_made_of_escapes_step_aside_or_agree(parts):
    raw = b"payload=" + b"".join(parts)
    got = fast_payload(raw)
    if got is not None:
        assert got == clean(parse_body(raw.decode("utf-8"), "application/x-www-form-urlencoded"))
