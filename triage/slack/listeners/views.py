"""Modal submissions. The request modal: switching type, validating before the ack, storing on submit.
The small modals about a request (needs info, decline, answer, breach reason) and the GitLab username one."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from slack_bolt.async_app import AsyncApp

from blocks.ids import CallbackId, Field, Input
from blocks.request_modal import request_modal
from blocks.small_modals import text_modal
from blocks.text import escape, link
from triage.core import fields
from triage.core.errors import DeliveryError, LifecycleError, NotAllowed
from triage.services import Duplicate, Services
from triage.slack.forms import ModalMeta, read_state
from triage.slack.listeners import bind, run
from triage.slack.listeners.directory import SaDirectory
from triage.slack.payloads import db_id

log = logging.getLogger(__name__)


def duplicate_text(dup: Duplicate) -> str:
    where = link(dup.url, dup.reference) if dup.url else escape(dup.reference)
    return (f":warning: {where} is already open for this opportunity in {escape(dup.queue or 'a queue')} "
            f"({escape(dup.status)}). "
            "Submit again to file this one anyway, or close the form and add to the open one.")


def queue_choices(services: Services) -> list[tuple[str, str]]:
    return [(q.key, q.name) for q in services.config.queues]


# ---- the request modal

async def switch_type(ack, body, client, services: Services):
    """Choosing a type redraws the modal with that type's fields, keeping what was typed."""
    await ack()
    view = body["view"]
    values = read_state(view["state"]["values"])
    new_type = values.get("request_type") or "opportunity"
    if new_type not in fields.REQUEST_TYPES:
        return
    modal = request_modal(request_type=new_type, queues=queue_choices(services), initial=values,
                          private_metadata=view.get("private_metadata") or "")
    # hash: if the AE changed the type twice quickly, the older update loses instead of the newer.
    await client.views_update(view_id=view["id"], hash=view.get("hash"), view=modal)


async def submit(ack, body, view, services: Services):
    user = body["user"]["id"]
    values = read_state(view["state"]["values"])
    meta = ModalMeta.load(view.get("private_metadata"))
    queue = services.config.queue(values.get("queue") or "")
    # "Not in the past" is judged by the queue's calendar day; an event sooner than its SLA is accepted.
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
            request_type=cleaned["request_type"], queues=queue_choices(services), initial=values,
            private_metadata=meta.dump(), duplicate_notice=duplicate_text(res)))
        return
    await ack(response_action="update", view=text_modal(
        "Request saved",
        f"*{res.reference}* is saved. In a few seconds it will be on the GitLab board and in the queue's "
        "channel, and you'll get a DM with both links. If GitLab or Slack is slow it waits and lands "
        "by itself: nothing to redo."))


# ---- the small modals' submissions

def meta_request_id(view: dict[str, Any]) -> int | None:
    return db_id(view.get("private_metadata"))


async def modal_submit(ack, body, view, client, services: Services, sas: SaDirectory | None, field: str, fn, *,
                       sa_only: bool) -> None:
    text = (read_state(view["state"]["values"]).get(field) or "").strip()
    if not text:
        await ack(response_action="errors", errors={field: "Please write something here."})
        return
    request_id, user = meta_request_id(view), body["user"]["id"]
    request = await run(services.get, request_id) if request_id else None
    if request is None:
        await ack(response_action="errors", errors={field: "That request no longer exists."})
        return
    if sa_only and not (sas is not None and await sas.is_sa(client, request.queue, user)):
        await ack(response_action="errors", errors={field: f"Only the {request.queue} SAs can do this."})
        return
    try:
        await run(fn, request_id, user, text, once=view["id"])  # a replay of this view changes nothing
    except (LifecycleError, NotAllowed) as e:
        await ack(response_action="errors", errors={field: str(e)})
        return
    await ack()


async def needs_info_submit(ack, body, view, client, services: Services, sas: SaDirectory):
    await modal_submit(ack, body, view, client, services, sas, Input.QUESTION.value, services.needs_info,
                       sa_only=True)


async def decline_submit(ack, body, view, client, services: Services, sas: SaDirectory):
    await modal_submit(ack, body, view, client, services, sas, Input.REASON.value, services.decline, sa_only=True)


async def answer_submit(ack, body, view, client, services: Services):
    await modal_submit(ack, body, view, client, services, None, Input.ANSWER.value, services.answer, sa_only=False)


async def breach_reason_submit(ack, body, view, services: Services):
    values = read_state(view["state"]["values"])
    reason, note = values.get(Input.BREACH_REASON.value), values.get(Input.BREACH_NOTE.value)
    request_id = meta_request_id(view)
    if not reason:
        await ack(response_action="errors", errors={Input.BREACH_REASON.value: "Choose a reason."})
        return
    try:
        await run(services.record_breach_reason, request_id, body["user"]["id"], reason, note)
    except LifecycleError as e:
        field = Input.BREACH_NOTE.value if reason == "other" else Input.BREACH_REASON.value
        await ack(response_action="errors", errors={field: str(e)})
        return
    await ack()


async def gitlab_username_submit(ack, body, view, services: Services):
    username = (read_state(view["state"]["values"]).get(Input.GITLAB_USERNAME.value) or "").strip().lstrip("@")
    if not username or any(c.isspace() for c in username):
        await ack(response_action="errors", errors={Input.GITLAB_USERNAME.value: "Your GitLab username, "
                                                    "as in gitlab.com/<username>."})
        return
    try:
        await run(services.link_gitlab_username, body["user"]["id"], username, once=view["id"])
    except DeliveryError as e:
        await ack(response_action="errors", errors={Input.GITLAB_USERNAME.value: str(e)})
        return
    await ack()


def register(app: AsyncApp, services: Services, sas: SaDirectory | None = None) -> None:
    sas = sas or SaDirectory(services)
    app.action(Field.REQUEST_TYPE.value)(bind(switch_type, services=services))
    app.view(CallbackId.SA_REQUEST_MODAL.value)(bind(submit, services=services))
    app.view(CallbackId.NEEDS_INFO_MODAL.value)(bind(needs_info_submit, services=services, sas=sas))
    app.view(CallbackId.DECLINE_MODAL.value)(bind(decline_submit, services=services, sas=sas))
    app.view(CallbackId.ANSWER_MODAL.value)(bind(answer_submit, services=services))
    app.view(CallbackId.BREACH_REASON_MODAL.value)(bind(breach_reason_submit, services=services))
    app.view(CallbackId.GITLAB_USERNAME_MODAL.value)(bind(gitlab_username_submit, services=services))
