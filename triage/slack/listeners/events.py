"""Events API listeners."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from triage.services import Services
from triage.slack.home import build_home, sa_queues_of
from triage.slack.listeners import bind, run
from triage.slack.listeners.directory import SaDirectory


async def home_opened(ack, event, client, *, services: Services, sas: SaDirectory):
    """Every open (Home or Messages tab) publishes the person's Home afresh: one views.publish each."""
    await ack()
    user = event.get("user")
    if not user:
        return
    queues = await sa_queues_of(services, sas, client, user)
    # Remembered first, so the worker publishes this Home again when something on it changes, including a
    # change made while this view is being built and published.
    await run(services.home_opened, user, queues)
    view = await run(build_home, services, user, queues)
    await client.views_publish(user_id=user, view=view)


def register(app: AsyncApp, services: Services, sas: SaDirectory) -> None:
    app.event("app_home_opened")(bind(home_opened, services=services, sas=sas))
