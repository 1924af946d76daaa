"""Bolt listeners grouped by kind. Handlers are module-level functions; each module's register(app, ...)
only wires them, binding their dependencies with `bind`."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import aiohttp

from blocks.small_modals import text_modal

T = TypeVar("T")
log = logging.getLogger(__name__)

# What a Slack Web API call raises when the API can't be reached or doesn't answer in time: aiohttp's
# connection and transport errors, and OSError (TimeoutError included).
_UNREACHABLE = (aiohttp.ClientError, OSError)


async def run(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run a blocking service call (SQL) off the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def bind(handler: Callable[..., Any], /, **deps: Any) -> Callable[..., Any]:
    """`handler` with `deps` (services, the SA directory) bound by keyword. Bolt injects a listener's
    arguments by the names `inspect.getfullargspec` reports as positional; keyword-bound parameters of a
    partial are reported as keyword-only, so Bolt fills in only ack, body, client, view... and leaves the
    bound ones alone. (No functools.wraps: its __wrapped__ would make Bolt see the unbound signature.)"""
    bound = functools.partial(never_raises(handler), **deps)
    bound.__name__ = handler.__name__  # type: ignore[attr-defined]  # Bolt logs listeners by name
    return bound


def never_raises(handler: Callable[..., Any]) -> Callable[..., Any]:
    """`handler`, except that an unexpected error is logged with an id and answered, never raised.

    Raised into Bolt, an error before ack() becomes a 500, and one right after ack() can make Bolt's
    runner drop the acknowledgement it already has (it resets it while handling the error), so Slack
    waits out its 3 seconds and shows "unhandled request". Here the person gets an answer either way:
    a modal says what happened (with the id), anything else is acknowledged.
    """

    async def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return await handler(*args, **kwargs)
        except Exception as e:
            error_id = uuid.uuid4().hex[:8]
            if isinstance(e, _UNREACHABLE):  # Slack's API down or slow: nothing to debug, one line
                log.error("Slack listener %s could not reach Slack's API (%s: %s) (error id %s)",
                          handler.__name__, e.__class__.__name__, e, error_id)
            else:
                log.exception("Slack listener %s failed (error id %s)", handler.__name__, error_id)
            ack = kwargs.get("ack")
            if ack is None or getattr(ack, "response", None) is not None:
                return None  # already acknowledged: Slack has its answer
            body = kwargs.get("body") or {}
            if isinstance(body, dict) and body.get("type") == "view_submission":
                await ack(response_action="update", view=text_modal(
                    "Something went wrong",
                    f"That didn't go through (error id `{error_id}`). Please try again in a moment; if it "
                    "keeps happening, give that id to the app's admins."))
            else:
                await ack()
            return None

    # Bolt reads a listener's argument names from its signature; keep the handler's.
    guarded.__signature__ = inspect.signature(handler)  # type: ignore[attr-defined]
    guarded.__name__ = handler.__name__
    return guarded
