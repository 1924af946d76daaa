"""POST /slack/events: verify the signature, refuse malformed bodies, hand the rest to Bolt."""

import binascii
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp, AsyncBoltRequest
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.request.async_internals import build_async_context
from slack_sdk.signature import SignatureVerifier

from triage.core.json_limits import loads
from triage.metrics import slack_kind
from triage.slack.payloads import CLEANED

log = logging.getLogger(__name__)


def fast_payload(raw: bytes) -> dict[str, Any] | None:
    """The JSON of an interactivity body (`payload=<form-encoded JSON>`, nothing else), read as
    json_limits.loads reads JSON (NUL characters removed, too deep refused), or None to let Bolt parse it.
    Bolt's parse (urllib's parse_qsl) unquotes the ~3,000 `%XX` escapes of a submitted modal in a Python
    loop, the largest single cost of a submission's ack; this does the same decoding in C: every `%XX`
    becomes `=XX` for binascii's quoted-printable decoder, which turns exactly those into bytes when the
    body holds no `=` or line break of its own (form encoding escapes both), and the bytes are read as
    UTF-8. Anything unusual (a second field, a raw `=` or line break, a `%` without two hex digits after
    it, invalid UTF-8, JSON too deep) goes the slow, general way, where Bolt's middleware gives the 400."""
    if (not raw.startswith(b"payload=") or b"&" in raw or raw.find(b"=", 8) != -1 or b"\n" in raw
            or b"\r" in raw):
        return None
    data = raw[8:].replace(b"+", b" ").replace(b"%", b"=")
    decoded = binascii.a2b_qp(data)
    if len(decoded) != len(data) - 2 * data.count(b"="):  # some `%` was not followed by two hex digits
        return None
    try:
        body = loads(decoded.decode("utf-8"))
    except (UnicodeError, ValueError):  # BadJSON is a ValueError
        return None
    return body if isinstance(body, dict) else None


def bolt_request(req: Request, raw: bytes) -> AsyncBoltRequest:
    """Bolt's request for this body, parsed once (see fast_payload)."""
    parsed = fast_payload(raw)
    if parsed is None:
        return to_async_bolt_request(req, raw)
    # What AsyncBoltRequest.__init__ does with a str body, minus its parse (HTTP mode requires a str).
    request = AsyncBoltRequest(body="", query=req.query_params, headers=req.headers)  # type: ignore[arg-type]
    request.raw_body = raw.decode("utf-8")
    request.body = parsed
    request.context = build_async_context(AsyncBoltContext({}), parsed)
    request.context[CLEANED] = True  # the payload middleware need not clean it again
    return request


def _malformed(body: object, raw: bytes) -> str | None:
    """Why a parsed, signed body is still not a Slack request we can read, or None when it is fine."""
    if isinstance(body, dict) and ("type" in body or "command" in body):
        return None
    if b"payload=" in raw or raw.lstrip().startswith(b"{"):
        return "the JSON has no 'type'"
    return "neither an interactivity payload, a slash command nor an event"


def slack_router(bolt: AsyncApp | None, signing_secret: str | None) -> APIRouter:
    router = APIRouter()
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    # Not in the OpenAPI schema: only Slack calls it, signed, with payloads documented by Slack.
    @router.post("/slack/events", include_in_schema=False)
    async def slack_events(req: Request) -> Response:
        if bolt is None or verifier is None:
            return JSONResponse({"error": "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"},
                                status_code=503)
        body = await req.body()
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            # slack_sdk's verifier decodes the body itself and would raise; Slack never sends such bodies.
            return JSONResponse({"error": "malformed Slack request: body is not UTF-8"}, status_code=400)
        # Checked here as well as in Bolt so that a bad signature is a 401 before we parse anything.
        # slack_sdk does int() on the timestamp and would raise on anything else: a 401, not a 500.
        timestamp = req.headers.get("x-slack-request-timestamp", "")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return JSONResponse({"error": "invalid or stale Slack signature"}, status_code=401)
        if not verifier.is_valid_request(body, dict(req.headers)):
            return JSONResponse({"error": "invalid or stale Slack signature"}, status_code=401)
        try:
            bolt_req = bolt_request(req, body)  # parses the body, once
        except ValueError:  # JSONDecodeError: a form's `payload`, or a JSON body, that isn't JSON
            what = "'payload'" if b"payload=" in body else "the JSON body"
            return JSONResponse({"error": f"malformed Slack request: {what} is not valid JSON"}, status_code=400)
        except (AttributeError, TypeError):  # Bolt reads fields off the payload: a list or a string has none
            return JSONResponse({"error": "malformed Slack request: the payload has no 'type'"}, status_code=400)
        except RecursionError:
            return JSONResponse({"error": "malformed Slack request: JSON nested too deep"}, status_code=400)
        # NUL characters and JSON depth are dealt with by the Bolt middleware (triage.slack.payloads),
        # which Socket Mode payloads pass through too, unless fast_payload has read them that way already.
        reason = _malformed(bolt_req.body, body)
        req.state.slack_kind = slack_kind(bolt_req.body)  # for the access log line and the ack histogram
        if reason:
            return JSONResponse({"error": f"malformed Slack request: {reason}"}, status_code=400)
        return to_starlette_response(await bolt.async_dispatch(bolt_req))

    return router
