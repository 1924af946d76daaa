"""The App Home: who sees what (leaders, SAs, AEs) and its publication with views.publish.

When it refreshes: Slack sends app_home_opened each time someone opens the app's Home tab, and the
app publishes a fresh view then, so what a person sees is computed when they look (claims, status
changes and new requests since the last look included).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from blocks.home import home_view
from triage.services import Services
from triage.services import summary as sm

GROUP_TTL = 60.0  # seconds a user group's member list is trusted


class SaQueues:
    """Which queues a Slack user works as an SA: its sa_users, or its sa_usergroup's members (cached)."""

    def __init__(self) -> None:
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    async def of(self, services: Services, client: Any, user: str) -> list[str]:
        keys = []
        for queue in services.config.queues:
            member = user in queue.sa_users or (
                queue.sa_usergroup is not None and user in await self._members(client, queue.sa_usergroup))
            if member:
                keys.append(queue.key)
        return keys

    async def _members(self, client: Any, group: str) -> frozenset[str]:
        cached = self._groups.get(group)
        if cached and time.monotonic() - cached[0] < GROUP_TTL:
            return cached[1]
        try:
            res = await client.usergroups_users_list(usergroup=group)
            members = frozenset(res.get("users") or ())
        except Exception:  # noqa: BLE001 - the Home still shows the rest; the next open tries again
            members = cached[1] if cached else frozenset()
        self._groups[group] = (time.monotonic(), members)
        return members


def build_home(services: Services, user: str, sa_queues: list[str], now: datetime | None = None) -> dict:
    """The view for one person (blocking: SQL)."""
    now = now or datetime.now(UTC)
    content = sm.home_content(services.engine, services.config, user, sa_queues=sa_queues, now=now)
    names = {q.key: q.name for q in services.config.queues}
    return home_view(summary=content.summary, late=content.late, claims=content.claims,
                     unclaimed=content.unclaimed, mine=content.mine, queue_names=names,
                     updated=now.strftime("%a %d %b %H:%M UTC"))
