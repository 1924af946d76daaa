"""One log line and one metric sample per HTTP request: method, route template, status, milliseconds,
and for /slack/events the payload kind (the Slack route puts it in `request.state.slack_kind`)."""

from __future__ import annotations

import logging
import time

from starlette.routing import Match

from triage import metrics

log = logging.getLogger("triage.access")


class AccessLog:
    """Pure ASGI middleware (no response buffering): times the request to the start of its response (what
    Slack waits for: the ack) and to its end."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        first_byte: float | None = None

        async def timed_send(message) -> None:
            nonlocal status, first_byte
            if message["type"] == "http.response.start":
                status = message["status"]
                first_byte = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            end = time.perf_counter()
            route = scope.get("route")
            # The route's template (/api/requests/{id}), never the raw path: bounded labels, no ids in them.
            template = getattr(route, "path", None) or _matching_route(scope) or "unmatched"
            kind = (scope.get("state") or {}).get("slack_kind")
            ms = round((end - start) * 1000, 1)
            method = scope.get("method", "")
            metrics.HTTP_REQUESTS.labels(method=method, route=template, status=str(status)).inc()
            if kind:
                metrics.SLACK_ACK_SECONDS.labels(kind=kind).observe((first_byte or end) - start)
            fields = {"method": method, "route": template, "status": status, "ms": ms}
            if kind:
                fields["slack_kind"] = kind
            log.info("%s %s %s %.1fms%s", method, template, status, ms, f" {kind}" if kind else "",
                     extra=fields)


def _matching_route(scope: dict) -> str | None:
    """The template of a plain Starlette route (/docs, /openapi.json), which leaves no `route` in the scope."""
    router = getattr(scope.get("app"), "router", None)
    for candidate in getattr(router, "routes", ()):
        match, _ = candidate.matches(scope)
        if match == Match.FULL:
            return getattr(candidate, "path", None)
    return None
