"""POST /slack/events: verify the signature, refuse malformed bodies, hand the rest to Bolt."""


import json
import logging
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.signature import SignatureVerifier

log = logging.getLogger(__name__)


def _malformed(body: bytes, content_type: str) -> str | None:
    """Why a signed body is still not a Slack request we can read, or None when it is fine."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return "body is not UTF-8"
    if "application/json" in content_type:
        try:
            data = json.loads(text)
        except ValueError:
            return "body is not valid JSON"
        return None if isinstance(data, dict) and "type" in data else "JSON body has no 'type'"
    form = parse_qs(text, keep_blank_values=True)
    if "payload" in form:
        try:
            payload = json.loads(form["payload"][0])
        except ValueError:
            return "'payload' is not valid JSON"
        if not isinstance(payload, dict) or "type" not in payload:
            return "'payload' has no 'type'"
        return None
    if "command" in form:
        return None
    return "neither an interactivity payload, a slash command nor an event"


def slack_router(bolt: AsyncApp | None, signing_secret: str | None) -> APIRouter:
    router = APIRouter()
    handler = AsyncSlackRequestHandler(bolt) if bolt else None
    verifier = SignatureVerifier(signing_secret) if signing_secret else None

    @router.post("/slack/events")
    async def slack_events(req: Request) -> Response:
        if handler is None or verifier is None:
            return JSONResponse({"error": "Slack is not configured: set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET"},
                                status_code=503)
        body = await req.body()
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            # slack_sdk's verifier decodes the body itself and would raise; Slack never sends such bodies.
            return JSONResponse({"error": "malformed Slack request: body is not UTF-8"}, status_code=400)
        # Checked here as well as in Bolt so that a bad signature is a 401 before we parse anything.
        if not verifier.is_valid_request(body, dict(req.headers)):
            return JSONResponse({"error": "invalid or stale Slack signature"}, status_code=401)
        reason = _malformed(body, req.headers.get("content-type", ""))
        if reason:
            return JSONResponse({"error": f"malformed Slack request: {reason}"}, status_code=400)
        return await handler.handle(req)

    return router
