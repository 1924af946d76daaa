"""Rule 3 (bodies are bounded before work) and rule 2 for the Slack route's headers and body."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlencode

from tests.conftest import post_slack_payload, shortcut_payload, sign
from triage.web.limits import SLACK_BODY_LIMIT, BodyLimit


def _drive(app, path: str, chunks, headers=()) -> tuple[int, int]:
    """Send a streamed body to the ASGI app; (status, bytes the app pulled from the client)."""
    pulled = 0
    status = {}
    source = iter(chunks)

    async def receive():
        nonlocal pulled
        chunk = next(source, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(message):
        if message["type"] == "http.response.start":
            status["code"] = message["status"]

    scope = {"type": "http", "method": "POST", "path": path, "headers": list(headers), "query_string": b"",
             "http_version": "1.1", "scheme": "http", "server": ("t", 80), "client": ("c", 1), "root_path": ""}
    asyncio.run(app(scope, receive, send))
    return status["code"], pulled


def test_a_200_mb_body_to_slack_events_is_refused_413_after_reading_about_a_megabyte(client):
    app = client.app
    chunk = b"x" * 65536
    status, pulled = _drive(app, "/slack/events", (chunk for _ in range(200 * 16)))
    assert status == 413 and pulled <= SLACK_BODY_LIMIT + len(chunk)


def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_read(client):
    for path in ("/slack/events", "/gitlab/webhook", "/healthz"):
        status, pulled = _drive(client.app, path, iter([b"x"]), [(b"content-length", b"209715200")])
        assert (status, pulled) == (413, 0)


def test_the_middleware_hands_small_bodies_on_untouched():
    seen = {}

    async def inner(scope, receive, send):
        seen["body"] = (await receive())["body"]
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    status, _ = _drive(BodyLimit(inner), "/slack/events", iter([b"ab", b"cd"]))
    assert status == 204 and seen["body"] == b"abcd"


def test_a_413_over_http_says_why(client):
    r = client.post("/slack/events", content=b"x" * (SLACK_BODY_LIMIT + 1))
    assert r.status_code == 413 and "larger than" in r.json()["error"]


def test_a_timestamp_header_that_is_not_a_number_is_a_401(client):
    body = urlencode({"payload": json.dumps({"type": "shortcut"})}).encode()
    for ts in ("abc", "1e9", "", "١٢٣".encode(), "9" * 40, "-1"):
        headers = {**sign(body), "X-Slack-Request-Timestamp": ts,
                   "Content-Type": "application/x-www-form-urlencoded"}
        r = client.post("/slack/events", content=body, headers=headers)
        assert r.status_code == 401, ts


def test_slack_json_nested_100000_deep_is_a_400(client, fake_slack):
    raw = '{"type": "shortcut", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    body = urlencode({"payload": raw}).encode()
    r = client.post("/slack/events", content=body,
                    headers={**sign(body), "Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 400 and "deep" in r.json()["error"]
    shallow = shortcut_payload(fake_slack)
    shallow["extra"] = json.loads("[" * 70 + "]" * 70)
    assert post_slack_payload(client, shallow).status_code == 400
