"""Slash commands."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from blocks.ids import SlashCommand
from triage.services import Services


def register(app: AsyncApp, services: Services) -> None:
    @app.command(SlashCommand.SA_SLA.value)
    async def sa_sla(ack, command):
        if command.get("user_id") not in services.config.slack.leaders:
            await ack(response_type="ephemeral", text="SLA summaries are for the leaders named in the config.")
            return
        await ack(response_type="ephemeral", text="The SLA summary in Slack is coming soon.")
