"""Events API listeners."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp

from triage.services import Services
from triage.slack.home import SaQueues, build_home
from triage.slack.listeners import run

log = logging.getLogger(__name__)


def register(app: AsyncApp, services: Services) -> None:
    sa_queues = SaQueues()

    @app.event("app_home_opened")
    async def home_opened(ack, event, client):
        # Every open (Home or Messages tab) publishes the person's Home afresh: one views.publish each.
        await ack()
        user = event.get("user")
        if not user:
            return
        queues = await sa_queues.of(services, client, user)
        view = await run(build_home, services, user, queues)
        await client.views_publish(user_id=user, view=view)
