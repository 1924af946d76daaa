"""Buttons and selects on the request card and in DMs: claim, unclaim, status, needs info, decline,
assign, answer. Each handler: acknowledge, check who clicked, call a service, tell the person."""

from __future__ import annotations

import logging
import time
from typing import Any

from slack_bolt.async_app import AsyncApp

from blocks.ids import ActionId, CallbackId, Input
from blocks.request_card import parse_status_value, request_id_from_block_id
from blocks.request_modal import (
    answer_modal,
    breach_reason_modal,
    decline_modal,
    gitlab_username_modal,
    needs_info_modal,
)
from triage.core.errors import AlreadyClaimed, DeliveryError, LifecycleError, NotAllowed
from triage.services import Services
from triage.slack.forms import read_state
from triage.slack.listeners import run
from triage.slack.notifier import LINK_GITLAB_ACTION

log = logging.getLogger(__name__)

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


def action_request_id(body: dict[str, Any]) -> int | None:
    """The request id an action carries: a button's value, a status option's value, or the block id."""
    action = (body.get("actions") or [{}])[0]
    raw = action.get("value")
    if raw is None and action.get("selected_option"):
        raw, _ = parse_status_value(action["selected_option"]["value"])
    if raw is None:
        raw = request_id_from_block_id(action.get("block_id") or "")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


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


def register(app: AsyncApp, services: Services) -> None:
    sas = SaDirectory(services)

    async def guarded(body, client, fn, *args, ask_breach: bool = False) -> None:
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

    @app.action(ActionId.OPEN_ISSUE.value)
    async def open_issue(ack):  # a link button: Slack opens the URL, we only acknowledge
        await ack()

    @app.action(ActionId.CLAIM.value)
    async def claim(ack, body, client):
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
        await guarded(body, client, services.claim, request_id, user, ask_breach=True)

    @app.action(ActionId.ASSIGN.value)
    async def assign(ack, body, client):
        await ack()
        user, request_id = body["user"]["id"], action_request_id(body)
        assignee = (body.get("actions") or [{}])[0].get("selected_user")
        if not services.is_leader(user):
            await tell(client, body, "Only leaders can assign requests.")
            return
        if not request_id or not assignee:
            return
        await guarded(body, client, services.assign, request_id, user, assignee, ask_breach=True)

    @app.action(ActionId.UNCLAIM.value)
    async def unclaim(ack, body, client):
        await ack()
        request_id = action_request_id(body)
        if request_id:
            await guarded(body, client, services.unclaim, request_id, body["user"]["id"])

    @app.action(ActionId.STATUS.value)
    async def status(ack, body, client):
        await ack()
        option = (body.get("actions") or [{}])[0].get("selected_option") or {}
        try:
            request_id, new_status = parse_status_value(option.get("value", ""))
            rid = int(request_id)
        except ValueError:
            return
        await guarded(body, client, services.set_status, rid, body["user"]["id"], new_status,
                      ask_breach=new_status == "done")

    async def open_modal(body, client, builder, *, sa_only: str | None = None, allowed=None) -> None:
        """Open one of the small modals about the clicked request. `sa_only` names the act when only the
        queue's SAs may do it; `allowed(user, request)` -> (ok, why not) for other rules."""
        request_id, user = action_request_id(body), body["user"]["id"]
        request = await run(services.get, request_id) if request_id else None
        if request is None:
            await tell(client, body, "I can't find that request.")
            return
        if sa_only and not await sas.is_sa(client, request.queue, user):
            await tell(client, body, f"Only the {request.queue} SAs can {sa_only} this request.")
            return
        if allowed is not None:
            ok, why_not = allowed(user, request)
            if not ok:
                await tell(client, body, why_not)
                return
        await client.views_open(trigger_id=body["trigger_id"],
                                view=builder(str(request_id), reference=request.reference))

    @app.action(ActionId.NEEDS_INFO.value)
    async def needs_info(ack, body, client):
        await ack()
        await open_modal(body, client, needs_info_modal, sa_only="ask for more information on")

    @app.action(ActionId.DECLINE.value)
    async def decline(ack, body, client):
        await ack()
        await open_modal(body, client, decline_modal, sa_only="decline")

    @app.action(ActionId.ANSWER.value)
    async def answer(ack, body, client):
        await ack()
        await open_modal(body, client, answer_modal)

    @app.action(ActionId.RECORD_BREACH_REASON.value)
    async def record_breach(ack, body, client):
        await ack()
        await open_modal(body, client, breach_reason_modal, allowed=lambda user, request: (
            services.is_leader(user) or user == request.owner,
            "Only leaders and the SA who has this request can say why it was missed."))

    @app.action(LINK_GITLAB_ACTION)
    async def link_gitlab(ack, body, client):
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view=gitlab_username_modal())

    # ---- the small modals' submissions

    def meta_request_id(view: dict[str, Any]) -> int | None:
        try:
            return int(view.get("private_metadata") or "")
        except ValueError:
            return None

    async def modal_submit(ack, body, view, client, field: str, fn, *, sa_only: bool) -> None:
        text = (read_state(view["state"]["values"]).get(field) or "").strip()
        if not text:
            await ack(response_action="errors", errors={field: "Please write something here."})
            return
        request_id, user = meta_request_id(view), body["user"]["id"]
        request = await run(services.get, request_id) if request_id else None
        if request is None:
            await ack(response_action="errors", errors={field: "That request no longer exists."})
            return
        if sa_only and not await sas.is_sa(client, request.queue, user):
            await ack(response_action="errors", errors={field: f"Only the {request.queue} SAs can do this."})
            return
        try:
            await run(fn, request_id, user, text)
        except (LifecycleError, NotAllowed) as e:
            await ack(response_action="errors", errors={field: str(e)})
            return
        await ack()

    @app.view(CallbackId.NEEDS_INFO_MODAL.value)
    async def needs_info_submit(ack, body, view, client):
        await modal_submit(ack, body, view, client, Input.QUESTION.value, services.needs_info, sa_only=True)

    @app.view(CallbackId.DECLINE_MODAL.value)
    async def decline_submit(ack, body, view, client):
        await modal_submit(ack, body, view, client, Input.REASON.value, services.decline, sa_only=True)

    @app.view(CallbackId.ANSWER_MODAL.value)
    async def answer_submit(ack, body, view, client):
        await modal_submit(ack, body, view, client, Input.ANSWER.value, services.answer, sa_only=False)

    @app.view(CallbackId.BREACH_REASON_MODAL.value)
    async def breach_reason_submit(ack, body, view):
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

    @app.view(CallbackId.GITLAB_USERNAME_MODAL.value)
    async def gitlab_username_submit(ack, body, view):
        username = (read_state(view["state"]["values"]).get(Input.GITLAB_USERNAME.value) or "").strip().lstrip("@")
        if not username or any(c.isspace() for c in username):
            await ack(response_action="errors", errors={Input.GITLAB_USERNAME.value: "Your GitLab username, "
                                                        "as in gitlab.com/<username>."})
            return
        try:
            await run(services.link_gitlab_username, body["user"]["id"], username)
        except DeliveryError as e:
            await ack(response_action="errors", errors={Input.GITLAB_USERNAME.value: str(e)})
            return
        await ack()
