"""Buttons and selects on the request card and in DMs: claim, unclaim, status, needs info, decline,
assign, answer. Each handler: acknowledge, check who clicked, call a service, tell the person.
The small modals these buttons open are submitted to triage.slack.listeners.views."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from blocks.ids import ActionId
from blocks.request_card import parse_status_value, request_id_from_block_id
from blocks.small_modals import (
    answer_modal,
    breach_reason_modal,
    decline_modal,
    gitlab_username_modal,
    needs_info_modal,
)
from triage.core.errors import AlreadyClaimed, LifecycleError
from triage.services import Services
from triage.slack.listeners import bind, run
from triage.slack.listeners.directory import SaDirectory
from triage.slack.notifier import LINK_GITLAB_ACTION
from triage.slack.payloads import db_id

log = logging.getLogger(__name__)


def action_request_id(body: dict[str, Any]) -> int | None:
    """The request id an action carries: a button's value, a status option's value, or the block id."""
    action = (body.get("actions") or [{}])[0]
    raw = action.get("value")
    if raw is None and action.get("selected_option"):
        raw, _ = parse_status_value(action["selected_option"]["value"])
    if raw is None:
        raw = request_id_from_block_id(action.get("block_id") or "")
    return db_id(raw)


async def tell(client, body: dict[str, Any], text: str) -> None:
    """An ephemeral note to the person who clicked, where they clicked (or a DM from a DM)."""
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
    try:
        if channel and not channel.startswith("D"):
            await client.chat_postEphemeral(channel=channel, user=user, text=text)
        else:
            await client.chat_postMessage(channel=user, text=text)
    except Exception:  # the action itself succeeded; a lost note must not look like a failure
        log.warning("could not tell %s: %s", user, text, exc_info=True)


async def guarded(body, client, services: Services, fn, *args, ask_breach: bool = False) -> None:
    """Run a service call; domain refusals become a short ephemeral message. With `ask_breach`, a change
    that allocated or finished a request after its deadline opens the breach reason modal."""
    try:
        change = await run(fn, *args)
    except AlreadyClaimed as e:
        await tell(client, body, f"<@{e.owner}> already has this request." if e.owner
                   else "Someone already has this request.")
    except LifecycleError as e:
        await tell(client, body, str(e))
    else:
        if change.message and not change.changed:
            await tell(client, body, change.message)
        elif ask_breach and await run(services.needs_breach_reason, change.request.id):
            await client.views_open(trigger_id=body["trigger_id"], view=breach_reason_modal(
                str(change.request.id), reference=change.request.reference))


async def open_modal(body, client, services: Services, sas: SaDirectory | None, builder, *,
                     sa_only: str | None = None, allowed=None) -> None:
    """Open one of the small modals about the clicked request. `sa_only` names the act when only the
    queue's SAs may do it; `allowed(user, request)` -> (ok, why not) for other rules."""
    request_id, user = action_request_id(body), body["user"]["id"]
    request = await run(services.get, request_id) if request_id else None
    if request is None:
        await tell(client, body, "I can't find that request.")
        return
    if sa_only and not (sas is not None and await sas.is_sa(client, request.queue, user)):
        await tell(client, body, f"Only the {request.queue} SAs can {sa_only} this request.")
        return
    if allowed is not None:
        ok, why_not = allowed(user, request)
        if not ok:
            await tell(client, body, why_not)
            return
    await client.views_open(trigger_id=body["trigger_id"],
                            view=builder(str(request_id), reference=request.reference))


# ---- the handlers

async def open_issue(ack):  # a link button: Slack opens the URL, we only acknowledge
    await ack()


async def claim(ack, body, client, services: Services, sas: SaDirectory):
    await ack()
    user, request_id = body["user"]["id"], action_request_id(body)
    request = await run(services.get, request_id) if request_id else None
    if request is None:
        await tell(client, body, "I can't find that request.")
        return
    if request.request_type == "event":
        await tell(client, body, "Event requests are assigned by a leader, not claimed.")
        return
    if not await sas.is_sa(client, request.queue, user):
        await tell(client, body, f"Only the {request.queue} SAs can claim this request.")
        return
    await guarded(body, client, services, services.claim, request_id, user, ask_breach=True)


async def assign(ack, body, client, services: Services, sas: SaDirectory):
    await ack()
    user, request_id = body["user"]["id"], action_request_id(body)
    assignee = (body.get("actions") or [{}])[0].get("selected_user")
    if not services.is_leader(user):
        await tell(client, body, "Only leaders can assign requests.")
        return
    if not request_id or not assignee:
        return
    request = await run(services.get, request_id)
    if request is None:
        await tell(client, body, "I can't find that request.")
        return
    # Only the queue's SAs work its requests: a pick from the whole workspace is refused, and said so.
    if assignee not in await sas.members(client, request.queue):
        await tell(client, body, f"<@{assignee}> isn't one of the {request.queue} SAs, so {request.reference} "
                                 "stays as it is. Pick someone from the queue's SA group.")
        return
    await guarded(body, client, services, services.assign, request_id, user, assignee, ask_breach=True)


async def unclaim(ack, body, client, services: Services):
    await ack()
    request_id = action_request_id(body)
    if request_id:
        await guarded(body, client, services, services.unclaim, request_id, body["user"]["id"])


async def status(ack, body, client, services: Services):
    await ack()
    option = (body.get("actions") or [{}])[0].get("selected_option") or {}
    try:
        request_id, new_status = parse_status_value(option.get("value", ""))
    except ValueError:
        return
    rid = db_id(request_id)
    if rid is None:
        return
    await guarded(body, client, services, services.set_status, rid, body["user"]["id"], new_status,
                  ask_breach=new_status == "done")


async def needs_info(ack, body, client, services: Services, sas: SaDirectory):
    await ack()
    await open_modal(body, client, services, sas, needs_info_modal, sa_only="ask for more information on")


async def decline(ack, body, client, services: Services, sas: SaDirectory):
    await ack()
    await open_modal(body, client, services, sas, decline_modal, sa_only="decline")


async def answer(ack, body, client, services: Services):
    await ack()
    await open_modal(body, client, services, None, answer_modal)


async def record_breach(ack, body, client, services: Services):
    await ack()
    await open_modal(body, client, services, None, breach_reason_modal, allowed=lambda user, request: (
        services.is_leader(user) or user == request.owner,
        "Only leaders and the SA who has this request can say why it was missed."))


async def link_gitlab(ack, body, client):
    await ack()
    await client.views_open(trigger_id=body["trigger_id"], view=gitlab_username_modal())


def register(app: AsyncApp, services: Services, sas: SaDirectory | None = None) -> None:
    sas = sas or SaDirectory(services)
    app.action(ActionId.OPEN_ISSUE.value)(bind(open_issue))
    app.action(ActionId.CLAIM.value)(bind(claim, services=services, sas=sas))
    app.action(ActionId.ASSIGN.value)(bind(assign, services=services, sas=sas))
    app.action(ActionId.UNCLAIM.value)(bind(unclaim, services=services))
    app.action(ActionId.STATUS.value)(bind(status, services=services))
    app.action(ActionId.NEEDS_INFO.value)(bind(needs_info, services=services, sas=sas))
    app.action(ActionId.DECLINE.value)(bind(decline, services=services, sas=sas))
    app.action(ActionId.ANSWER.value)(bind(answer, services=services))
    app.action(ActionId.RECORD_BREACH_REASON.value)(bind(record_breach, services=services))
    app.action(LINK_GITLAB_ACTION)(bind(link_gitlab))
