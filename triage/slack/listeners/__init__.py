"""Bolt listeners grouped by kind; each module exposes register(app, services)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking service call (SQL) off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)
