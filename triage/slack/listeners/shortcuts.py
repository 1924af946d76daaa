"""The "SA Request" shortcuts: open the request modal within Slack's 3 seconds."""

from __future__ import annotations

import asyncio
from functools import lru_cache
from typing import Any

from slack_bolt.async_app import AsyncApp

from blocks.ids import CallbackId
from blocks.request_modal import request_modal
from blocks.small_modals import no_queues_modal
from triage.core.fields import MAX_LENGTH
from triage.core.salesforce import find_opportunity_id
from triage.services import Services
from triage.slack.forms import ModalMeta
from triage.slack.listeners import bind, run

SENTENCE_WORDS = 6
PREFILL_WAIT_SECONDS = 0.3


def prefill_from_message(text: str) -> dict[str, Any]:
    """A message's text goes into `pain` when it reads like a sentence and fits, else `additional_context`;
    a Salesforce Opportunity id or URL in it fills `opportunity`."""
    initial: dict[str, Any] = {}
    text = (text or "").strip()
    opp = find_opportunity_id(text)
    if opp:
        initial["opportunity"] = opp
    if not text:
        return initial
    if len(text.split()) >= SENTENCE_WORDS and len(text) <= MAX_LENGTH["pain"]:
        initial["pain"] = text
    else:
        # Slack refuses an initial_value longer than the input's max_length, so a long message is cut
        # here, visibly: the AE sees where it stops and the note says so before they submit.
        limit = MAX_LENGTH["additional_context"]
        note = "\n[…message shortened to fit; the full text is in the Slack thread]"
        initial["additional_context"] = text if len(text) <= limit else text[: limit - len(note)] + note
    return initial


@lru_cache(maxsize=64)
def blank_modal(queues: tuple[tuple[str, str], ...], queue: str | None) -> dict[str, Any]:
    """The global shortcut's modal is the same for everyone but the default queue: built once per
    (queues, default), since building 18 blocks is a noticeable part of the 3-second window under load.
    Callers must not modify the returned dict."""
    return request_modal(request_type="opportunity", queues=queues, initial={"queue": queue} if queue else {},
                         private_metadata=ModalMeta().dump())


async def open_modal(body: dict, client, services: Services, initial: dict[str, Any], meta: ModalMeta) -> None:
    queues = [(q.key, q.name) for q in services.config.queues]
    if not queues:
        await client.views_open(trigger_id=body["trigger_id"], view=no_queues_modal())
        return
    try:
        # A default queue is a nicety; the trigger_id expires 3 s after the click, so never wait long.
        last = await asyncio.wait_for(run(services.last_queue, body["user"]["id"]), PREFILL_WAIT_SECONDS)
    except TimeoutError:
        last = None
    if last:
        initial.setdefault("queue", last)
    view = (blank_modal(tuple(queues), initial.get("queue")) if set(initial) <= {"queue"} and not
            meta.source_channel else
            request_modal(request_type="opportunity", queues=queues, initial=initial,
                          private_metadata=meta.dump()))
    await client.views_open(trigger_id=body["trigger_id"], view=view)


async def sa_request(ack, body, client, services: Services):
    await ack()
    await open_modal(body, client, services, {}, ModalMeta())


async def sa_request_from_message(ack, body, client, services: Services):
    await ack()
    message = body.get("message") or {}
    meta = ModalMeta(source_channel=(body.get("channel") or {}).get("id"), source_ts=message.get("ts"))
    await open_modal(body, client, services, prefill_from_message(message.get("text", "")), meta)


def register(app: AsyncApp, services: Services) -> None:
    app.shortcut(CallbackId.SA_REQUEST.value)(bind(sa_request, services=services))
    app.shortcut(CallbackId.SA_REQUEST_FROM_MESSAGE.value)(bind(sa_request_from_message, services=services))
