"""Group commit for the submission's ack path: submissions that arrive while one transaction is being
stored are stored together in the next one.

Every submitted modal is stored before it is acknowledged, and a transaction's fixed costs (taking the
write lock, BEGIN, COMMIT with its fsync, the hop to a thread, SQLAlchemy's per-statement work) are most
of what storing one costs. At quarter end many AEs submit at once: while one transaction commits, the
submissions that came in meanwhile wait for it and then go into the next one together, one statement
per table. Nothing waits for a timer: a lone submission is stored at once, as before, and each is
acknowledged only once its own transaction has committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 64  # submissions per transaction at most (a burst's backlog goes in several)


class GroupCommit(Generic[T, R]):
    """`await submit(item)` gives `store([... item ...])`'s result for it; `store` runs off the event loop
    with whatever items are waiting, one call at a time. `store` returns one result per item, in order;
    a result that is an Exception is raised to that item's caller only."""

    def __init__(self, store: Callable[[Sequence[T]], Sequence[R | Exception]], *, max_batch: int = MAX_BATCH):
        self._store = store
        self._max = max_batch
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._task: asyncio.Task[None] | None = None  # the store loop while it runs (kept: not collected)

    async def submit(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        # The loop ends in the same step that finds nothing waiting, so a done task has left nothing behind.
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._store_waiting())
        # shield: a caller that goes away (the client hung up) doesn't cancel what the others wait for.
        return await asyncio.shield(future)

    async def _store_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:self._max], self._waiting[self._max:]
            try:
                results = await asyncio.to_thread(self._store, [item for item, _ in batch])
            except Exception as e:  # noqa: BLE001  (the database is down...): each caller hears of it
                results = [e] * len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)
