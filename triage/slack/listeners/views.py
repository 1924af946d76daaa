"""The request modal: switching type, validating before the ack, storing on submit."""

from __future__ import annotations

import logging
from datetime import UTC

from slack_bolt.async_app import AsyncApp

from blocks.ids import CallbackId, Field
from blocks.request_modal import request_modal, text_modal
from blocks.text import escape, link
from triage.core import fields
from triage.services import Duplicate, Services
from triage.slack.forms import ModalMeta, read_state
from triage.slack.listeners import run

log = logging.getLogger(__name__)


def duplicate_text(dup: Duplicate) -> str:
    where = link(dup.url, dup.reference) if dup.url else escape(dup.reference)
    return (f":warning: {where} is already open for this opportunity in {escape(dup.queue or 'a queue')} "
            f"({escape(dup.status)}). "
            "Submit again to file this one anyway, or close the form and add to the open one.")


def register(app: AsyncApp, services: Services) -> None:
    def queues() -> list[tuple[str, str]]:
        return [(q.key, q.name) for q in services.config.queues]

    @app.action(Field.REQUEST_TYPE.value)
    async def switch_type(ack, body, client):
        """Choosing a type redraws the modal with that type's fields, keeping what was typed."""
        await ack()
        view = body["view"]
        values = read_state(view["state"]["values"])
        new_type = values.get("request_type") or "opportunity"
        if new_type not in fields.REQUEST_TYPES:
            return
        modal = request_modal(request_type=new_type, queues=queues(), initial=values,
                              private_metadata=view.get("private_metadata") or "")
        # hash: if the AE changed the type twice quickly, the older update loses instead of the newer.
        await client.views_update(view_id=view["id"], hash=view.get("hash"), view=modal)

    @app.view(CallbackId.SA_REQUEST_MODAL.value)
    async def submit(ack, body, view):
        user = body["user"]["id"]
        values = read_state(view["state"]["values"])
        meta = ModalMeta.load(view.get("private_metadata"))
        queue = services.config.queue(values.get("queue") or "")
        # "Not in the past" is judged by the queue's calendar day.
        result = fields.validate(values, now=services.now(), queue_keys=services.config.queue_keys,
                                 tz=queue.tz if queue else UTC)
        if result.errors:
            await ack(response_action="errors", errors=result.errors)
            return
        # The AE's name comes with the submission, so filing the issue needs no Slack call.
        cleaned = {**result.cleaned, "requester_name": body["user"].get("name") or body["user"].get("username")}
        res = await run(services.submit_unless_duplicate, submission_key=view["id"], requester=user,
                        cleaned=cleaned, duplicate_ok=meta.duplicate_ok)
        if isinstance(res, Duplicate):
            meta.duplicate_ok = res.request_id
            await ack(response_action="update", view=request_modal(
                request_type=cleaned["request_type"], queues=queues(), initial=values,
                private_metadata=meta.dump(), duplicate_notice=duplicate_text(res)))
            return
        await ack(response_action="update", view=text_modal(
            "Request saved",
            f"*{res.reference}* is saved. In a few seconds it will be on the GitLab board and in the queue's "
            "channel, and you'll get a DM with both links. If GitLab or Slack is slow it waits and lands "
            "by itself: nothing to redo."))
