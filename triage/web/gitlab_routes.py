"""POST /gitlab/webhook: Issue Hook and Note Hook deliveries from the triage boards."""

import hmac
import logging
import uuid
from collections.abc import Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from triage import metrics
from triage.core.gitlab_hooks import UnreadableHook, parse_hook
from triage.services import Services
from triage.web.limits import BadJSON, loads

log = logging.getLogger(__name__)

KEY_MAX = 128  # GitLab's keys are UUIDs (36 characters)


def gitlab_router(services: Services, secret: str | None,
                  bot_user_id: Callable[[], int | None] = lambda: None) -> APIRouter:
    """`bot_user_id` gives the app's own GitLab user id (GET /user, cached), None while unknown."""
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
        # Idempotency-Key stays the same across GitLab's retries and "Resend request", while
        # X-Gitlab-Event-UUID changes on a resend; the UUID is the key only for GitLab before 17.4
        # (https://docs.gitlab.com/user/project/integrations/webhooks/#delivery-headers).
        key = req.headers.get("idempotency-key") or req.headers.get("x-gitlab-event-uuid")
        if key is not None and (len(key) > KEY_MAX or not key.isprintable()):
            return JSONResponse({"error": f"Idempotency-Key longer than {KEY_MAX} characters or unprintable"},
                                status_code=400), "bad_request"
        try:
            hook = parse_hook(loads(await req.body()))
        except (BadJSON, UnreadableHook) as e:
            return JSONResponse({"error": str(e)}, status_code=400), "bad_request"
        event = req.headers.get("x-gitlab-event", "")
        if hook is None:
            return JSONResponse({"result": f"ignored: {event or 'this'} events are not used"}), "ignored"
        bot = await run_in_threadpool(bot_user_id) if hook.object_kind == "note" else None
        try:
            result = await run_in_threadpool(services.apply_gitlab_hook, event=event, hook=hook,
                                             delivery_key=key or None, bot_user_id=bot)
        except SQLAlchemyError:
            # Nothing was recorded (the delivery key commits with the change), so GitLab's retry of this
            # delivery will apply it; a 503 asks for exactly that.
            error_id = uuid.uuid4().hex[:8]
            log.exception("GitLab %s (%s) could not be stored (error id %s)", event, key, error_id)
            return JSONResponse({"error": f"could not store this delivery now (error id {error_id}); "
                                          "it is applied when GitLab retries it"}, status_code=503), "error"
        log.info("GitLab %s (%s): %s", event, key, result)
        # 200 for everything we understood, including what we ignore: GitLab disables a hook that keeps
        # failing (5xx for a while, 4xx for good, https://docs.gitlab.com/user/project/integrations/webhooks/),
        # and a 4xx here means a payload GitLab wouldn't send.
        return JSONResponse({"result": result}), metrics.webhook_result(result)

    return router
