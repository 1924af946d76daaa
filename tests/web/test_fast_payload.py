"""The route's own decoding of interactivity bodies gives exactly what Bolt's parse gives (NUL characters
removed, as the app reads all JSON), or steps aside."""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

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
