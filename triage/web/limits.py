"""Limits on what an inbound request may be, checked before any work: body size, JSON depth, NUL bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

# Slack's requests are small: a view_submission carries the modal's blocks and state, tens of KB at
# most. GitLab's Issue and Note Hooks carry the issue description, which GitLab allows up to 1,048,576
# characters (https://docs.gitlab.com/user/markdown/#character-limits); JSON-escaped, a few MB.
SLACK_BODY_LIMIT = 1 * 1024 * 1024
GITLAB_BODY_LIMIT = 8 * 1024 * 1024
DEFAULT_BODY_LIMIT = 64 * 1024
# Deeper than any payload Slack or GitLab sends (Block Kit nests a few levels); deeper input is refused
# before a recursive walk (ours, pydantic's, the JSON encoder's) could exhaust the stack.
MAX_JSON_DEPTH = 64

ROUTE_LIMITS: Mapping[str, int] = {"/slack/events": SLACK_BODY_LIMIT, "/gitlab/webhook": GITLAB_BODY_LIMIT}


class BadJSON(ValueError):
    """A body that is not JSON we are willing to read; the message says why, for a 400."""


class BodyLimit:
    """ASGI middleware: a body larger than its route's limit is answered 413 without being read whole.

    A declared Content-Length over the limit is refused before a byte of the body is read; a chunked or
    understated body is read only up to the limit, then refused. The body read is handed on to the app.
    """

    def __init__(self, app: Any, limits: Mapping[str, int] = ROUTE_LIMITS, default: int = DEFAULT_BODY_LIMIT):
        self.app = app
        self.limits = dict(limits)
        self.default = default

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope.get("path", ""), self.default)
        declared = dict(scope.get("headers") or ()).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                await _answer(send, 400, "Content-Length is not a number")
                return
            if too_big:
                await _answer(send, 413, f"request body larger than {limit} bytes")
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _answer(send, 413, f"request body larger than {limit} bytes")
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _answer(send: Any, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def loads(raw: bytes | str) -> Any:
    """JSON we accept: parsed, at most MAX_JSON_DEPTH deep, NUL characters removed from every string."""
    try:
        value = json.loads(raw)
    except RecursionError as e:
        raise BadJSON(f"JSON nested deeper than {MAX_JSON_DEPTH} levels") from e
    except (ValueError, UnicodeDecodeError) as e:
        raise BadJSON("body is not valid JSON") from e
    return clean(value)


def clean(value: Any) -> Any:
    """`value` with NUL characters removed from every string and key (PostgreSQL can store no NUL in
    text, and no person types one), refused when nested deeper than MAX_JSON_DEPTH. Iterative, so that
    depth can't exhaust the stack; lists and dicts are cleaned in place."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if not isinstance(value, dict | list):
        return value
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise BadJSON(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
        if isinstance(node, list):
            for i, item in enumerate(node):
                if isinstance(item, str):
                    if "\x00" in item:
                        node[i] = item.replace("\x00", "")
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1))
        else:
            for key in [k for k in node if isinstance(k, str) and "\x00" in k]:
                node[key.replace("\x00", "")] = node.pop(key)
            for key, item in node.items():
                if isinstance(item, str):
                    if "\x00" in item:
                        node[key] = item.replace("\x00", "")
                elif isinstance(item, dict | list):
                    stack.append((item, depth + 1))
    return value
