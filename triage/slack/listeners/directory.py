"""Who may act as an SA in a queue; shared by the card's buttons and the small modals' submissions."""

from __future__ import annotations

import time

from triage.services import Services

GROUP_CACHE_SECONDS = 60.0  # user group membership changes rarely; don't ask Slack on every click


class SaDirectory:
    """Who may claim in a queue: its sa_users, or the members of its sa_usergroup (cached briefly)."""

    def __init__(self, services: Services):
        self.services = services
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    async def members(self, client, queue_key: str) -> frozenset[str]:
        queue = self.services.config.queue(queue_key)
        if queue is None:
            return frozenset()
        members = set(queue.sa_users)
        if queue.sa_usergroup:
            cached = self._groups.get(queue.sa_usergroup)
            if cached and time.monotonic() - cached[0] < GROUP_CACHE_SECONDS:
                members |= cached[1]
            else:
                res = await client.usergroups_users_list(usergroup=queue.sa_usergroup)
                users = frozenset(res.get("users") or ())
                self._groups[queue.sa_usergroup] = (time.monotonic(), users)
                members |= users
        return frozenset(members)

    async def is_sa(self, client, queue_key: str, user: str) -> bool:
        return user in await self.members(client, queue_key) or self.services.is_leader(user)
