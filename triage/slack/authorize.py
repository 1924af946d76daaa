"""Bolt's authorization for the app's one workspace, without making requests wait on Slack's API.

Bolt's own single-workspace authorization asks Slack who the bot is (`auth.test`) on the first request
and keeps the answer; while Slack's API can't be reached (an egress outage, DNS, a proxy), it raises on
every request, so every shortcut, click and submission is a 500 and nothing the AEs submit is stored,
although Slack itself still delivers them. Here the token is all a request needs: the bot's identity
(only used to tell the app's own events apart) is asked for in the background, kept once Slack answers,
and asked again at most every `retry_seconds` while it doesn't, with one log line per failure."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

RETRY_SECONDS = 30.0


class BotAuthorize(AsyncAuthorize):
    def __init__(self, client: AsyncWebClient, *, retry_seconds: float = RETRY_SECONDS,
                 clock: Any = time.monotonic) -> None:
        super().__init__()
        self._client = client
        self._retry = retry_seconds
        self._clock = clock
        self._identity: dict[str, Any] | None = None
        self._next_try = float("-inf")
        self._task: asyncio.Task[None] | None = None  # the lookup in flight (kept: not collected)

    @property
    def identity(self) -> dict[str, Any] | None:
        """What auth.test said (team_id, user_id of the bot, bot_id), once it has answered."""
        return self._identity

    async def __call__(self, *, context: Any, enterprise_id: str | None, team_id: str | None,
                       user_id: str | None, **_: Any) -> AuthorizeResult:
        identity = self._identity
        if identity is None:
            self._look_up()
            identity = {}
        return AuthorizeResult(
            enterprise_id=identity.get("enterprise_id") or enterprise_id,
            team_id=identity.get("team_id") or team_id,
            bot_user_id=identity.get("user_id"), bot_id=identity.get("bot_id"),
            bot_token=self._client.token, user_id=user_id)

    def _look_up(self) -> None:
        if (self._task is not None and not self._task.done()) or self._clock() < self._next_try:
            return
        self._next_try = self._clock() + self._retry
        self._task = asyncio.get_running_loop().create_task(self._auth_test(), name="triage-slack-auth-test")

    async def _auth_test(self) -> None:
        try:
            response = await self._client.auth_test()
        except SlackApiError as e:  # invalid_auth, token_revoked...: the token itself
            log.error("Slack refused the bot token (auth.test: %s): check SLACK_BOT_TOKEN; requests are still "
                      "acknowledged and stored, Slack calls fail until it is fixed", e.response.get("error"))
            return
        except Exception as e:  # noqa: BLE001  (unreachable, timed out, not JSON): one line, asked again later
            log.warning("Slack's API did not answer auth.test (%s); requests are still acknowledged and stored, "
                        "asking again in %.0f s", e.__class__.__name__, self._retry)
            return
        self._identity = dict(response.data) if isinstance(response.data, dict) else {}
