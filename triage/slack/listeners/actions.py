"""Buttons and selects on the request card."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from blocks.ids import ActionId
from triage.services import Services


def register(app: AsyncApp, services: Services) -> None:
    @app.action(ActionId.OPEN_ISSUE.value)
    async def open_issue(ack):  # a link button: Slack opens the URL, we only acknowledge
        await ack()

    for action in (ActionId.CLAIM, ActionId.UNCLAIM, ActionId.STATUS, ActionId.NEEDS_INFO, ActionId.DECLINE,
                   ActionId.ASSIGN, ActionId.ANSWER):
        @app.action(action.value)
        async def coming_soon(ack, body, client):
            await ack()
            await client.chat_postEphemeral(
                channel=(body.get("channel") or {}).get("id"), user=body["user"]["id"],
                text="Working requests from the thread is coming soon; for now, use the GitLab board.")
