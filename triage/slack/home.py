"""The App Home: who sees what (leaders, SAs, AEs) and its publication with views.publish.

When it refreshes: Slack sends app_home_opened each time someone opens the app's Home tab, and the
app publishes a fresh view then, so what a person sees is computed when they look (claims, status
changes and new requests since the last look included).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackClientError

from blocks.home import home_view
from triage.services import Services
from triage.services import summary as sm

log = logging.getLogger(__name__)


async def sa_queues_of(services: Services, sas: Any, client: Any, user: str) -> list[str]:
    """The queues `user` works as an SA (sa_users or sa_usergroup members, from the shared SA directory);
    if Slack can't say who is in a group, the Home still shows the rest."""
    keys = []
    for queue in services.config.queues:
        try:
            if user in await sas.members(client, queue.key):
                keys.append(queue.key)
        except SlackClientError as e:
            log.warning("App Home: members of %s unknown (%s)", queue.key, e.__class__.__name__)
    return keys


def build_home(services: Services, user: str, sa_queues: list[str], now: datetime | None = None) -> dict:
    """The view for one person (blocking: SQL)."""
    now = now or datetime.now(UTC)
    content = sm.home_content(services.engine, services.config, user, sa_queues=sa_queues, now=now)
    names = {q.key: q.name for q in services.config.queues}
    return home_view(summary=content.summary, late=content.late, claims=content.claims,
                     unclaimed=content.unclaimed, mine=content.mine, queue_names=names,
                     updated=now.strftime("%a %d %b %H:%M UTC"))
