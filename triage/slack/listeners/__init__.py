"""Bolt listeners grouped by kind. Handlers are module-level functions; each module's register(app, ...)
only wires them, binding their dependencies with `bind`."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


async def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking service call (SQL) off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def bind(handler: Callable[..., Any], /, **deps: Any) -> Callable[..., Any]:
    """`handler` with `deps` (services, the SA directory) bound by keyword. Bolt injects a listener's
    arguments by the names `inspect.getfullargspec` reports as positional; keyword-bound parameters of a
    partial are reported as keyword-only, so Bolt fills in only ack, body, client, view... and leaves the
    bound ones alone. (No functools.wraps: its __wrapped__ would make Bolt see the unbound signature.)"""
    bound = functools.partial(handler, **deps)
    bound.__name__ = handler.__name__  # type: ignore[attr-defined]  # Bolt logs listeners by name
    return bound
