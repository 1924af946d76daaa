"""build_bolt_app: the async Bolt app with every listener registered.

Async all the way: Slack's 3-second acknowledgement must never wait behind another request (the sync
FastAPI adapter serialises them) and blocking work (SQL) runs in threads via `asyncio.to_thread`.
"""

from __future__ import annotations

import logging
import uuid

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from triage.config import Settings
from triage.services import Services
from triage.slack.authorize import BotAuthorize
from triage.slack.listeners import actions, commands, events, expedite, shortcuts, views
from triage.slack.listeners.directory import SaDirectory
from triage.slack.payloads import ValidatePayload

log = logging.getLogger(__name__)


def quiet_slack_sdk_debug() -> None:
    """slack_sdk formats a debug line of every request and response when its logger's level is unset (0
    counts as "<= DEBUG"), which costs real CPU per call; give those loggers a level unless one is set."""
    for name in ("slack_sdk.web.base_client", "slack_sdk.web.async_base_client", "slack_bolt"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)


def build_bolt_app(settings: Settings, services: Services) -> AsyncApp:
    quiet_slack_sdk_debug()
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(),
                            base_url=settings.slack_api_url, timeout=5, retry_handlers=[])
    app = AsyncApp(
        client=client,
        # The token alone authorizes a request; who the bot is is learnt in the background (see BotAuthorize):
        # Bolt's own authorization answers every request with a 500 while Slack's API can't be reached.
        authorize=BotAuthorize(client),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        # Acknowledge first, then work: listeners call ack() themselves before any Slack call.
        process_before_response=False,
        ignoring_self_events_enabled=True,
        # /slack/events checks every signature (and the 5-minute window) before Bolt sees the request, and
        # Socket Mode carries none; checking again here would only cost an HMAC per request.
        request_verification_enabled=False,
        raise_error_for_unhandled_request=False,
    )
    # Every payload is checked against its kind's model before a listener runs: a wrong shape is a 400.
    app.middleware(ValidatePayload())
    sas = SaDirectory(services)  # one cache of queue SAs for the card's buttons and the modals they open
    # Bolt tries the listeners in the order they were registered, running each one's matchers: the modal's
    # submission, the busiest payload at quarter end, is matched first. (Each listener matches distinct ids.)
    views.register(app, services, sas)
    shortcuts.register(app, services)
    actions.register(app, services, sas)
    commands.register(app, services)
    events.register(app, services, sas)
    expedite.register(app, services)

    @app.error
    async def on_error(error, body, logger):  # one handler: unknown errors get an id that is also logged
        error_id = uuid.uuid4().hex[:8]
        kind = (body or {}).get("type") if isinstance(body, dict) else None
        log.exception("Slack %s failed (error id %s): %r", kind, error_id, error, exc_info=error)

    return app
