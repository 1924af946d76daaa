"""Limits on what an inbound request may be, checked before any work: body size here; JSON depth and NUL
bytes in triage.core.json_limits (re-exported for the routes)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from triage.core.json_limits import MAX_JSON_DEPTH, BadJSON, clean, loads

__all__ = ["MAX_JSON_DEPTH", "BadJSON", "BodyLimit", "clean", "loads"]

# Slack's requests are small: a view_submission carries the modal's blocks and state, tens of KB at
# most. GitLab's Issue and Note Hooks carry the issue description, which GitLab allows up to 1,048,576
# characters (https://docs.gitlab.com/user/markdown/#character-limits); JSON-escaped, a few MB.
SLACK_BODY_LIMIT = 1 * 1024 * 1024
GITLAB_BODY_LIMIT = 8 * 1024 * 1024
DEFAULT_BODY_LIMIT = 64 * 1024

ROUTE_LIMITS: Mapping[str, int] = {"/slack/events": SLACK_BODY_LIMIT, "/gitlab/webhook": GITLAB_BODY_LIMIT}


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
