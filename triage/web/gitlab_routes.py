"""POST /gitlab/webhook: Issue Hook and Note Hook deliveries from the triage boards."""

import hmac
import json
import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from triage import metrics
from triage.services import Services

log = logging.getLogger(__name__)


def gitlab_router(services: Services, secret: str | None) -> APIRouter:
    router = APIRouter()

    # Not in the OpenAPI schema: only GitLab calls it, with its documented Issue Hook and Note Hook bodies.
    @router.post("/gitlab/webhook", include_in_schema=False)
    async def gitlab_webhook(req: Request) -> JSONResponse:
        response, result = await _receive(req)
        metrics.WEBHOOKS.labels(result=result).inc()
        return response

    async def _receive(req: Request) -> tuple[JSONResponse, str]:
        if not secret:
            return JSONResponse({"error": "GitLab webhooks are not configured: set GITLAB_WEBHOOK_SECRET"},
                                status_code=503), "not_configured"
        token = req.headers.get("x-gitlab-token", "")
        # Constant time: the comparison must not tell an attacker how much of the token was right.
        if not hmac.compare_digest(token.encode(), secret.encode()):
            return JSONResponse({"error": "missing or wrong X-Gitlab-Token"}, status_code=401), "unauthorized"
        try:
            payload = json.loads(await req.body())
        except (ValueError, UnicodeDecodeError):
            return JSONResponse({"error": "body is not valid JSON"}, status_code=400), "bad_request"
        if not isinstance(payload, dict):
            return JSONResponse({"error": "body is not a JSON object"}, status_code=400), "bad_request"
        key = req.headers.get("x-gitlab-event-uuid") or req.headers.get("idempotency-key")
        event = req.headers.get("x-gitlab-event", "")
        result = await run_in_threadpool(services.apply_gitlab_hook, event=event, payload=payload,
                                         delivery_key=key)
        log.info("GitLab %s (%s): %s", event, key, result)
        # 200 for everything we understood, including what we ignore: a 4xx/5xx would make GitLab
        # retry and eventually disable the hook (https://docs.gitlab.com/user/project/integrations/webhooks/).
        return JSONResponse({"result": result}), metrics.webhook_result(result)

    return router
