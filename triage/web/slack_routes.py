"""POST /slack/events: verify the signature, refuse malformed bodies, hand the rest to Bolt."""

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.starlette.async_handler import to_async_bolt_request, to_starlette_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

from triage.metrics import slack_kind

log = logging.getLogger(__name__)


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
            bolt_request = to_async_bolt_request(req, body)  # parses the body, once
        except ValueError:  # JSONDecodeError: a form's `payload`, or a JSON body, that isn't JSON
            what = "'payload'" if b"payload=" in body else "the JSON body"
            return JSONResponse({"error": f"malformed Slack request: {what} is not valid JSON"}, status_code=400)
        except (AttributeError, TypeError):  # Bolt reads fields off the payload: a list or a string has none
            return JSONResponse({"error": "malformed Slack request: the payload has no 'type'"}, status_code=400)
        except RecursionError:
            return JSONResponse({"error": "malformed Slack request: JSON nested too deep"}, status_code=400)
        # NUL characters and JSON depth are dealt with by the Bolt middleware (triage.slack.payloads),
        # which Socket Mode payloads pass through too.
        reason = _malformed(bolt_request.body, body)
        req.state.slack_kind = slack_kind(bolt_request.body)  # for the access log line and the ack histogram
        if reason:
            return JSONResponse({"error": f"malformed Slack request: {reason}"}, status_code=400)
        return to_starlette_response(await bolt.async_dispatch(bolt_request))

    return router
