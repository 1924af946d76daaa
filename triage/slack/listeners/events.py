"""Events API listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from triage.services import Services


def register(app: AsyncApp, services: Services) -> None:
    @app.event("app_home_opened")
    async def home_opened(ack):  # the Home tab comes with the leaders' views; acknowledge meanwhile
        await ack()
