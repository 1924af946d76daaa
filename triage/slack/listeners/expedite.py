"""Expedite from the card: a leader or the claimer clicks Expedite (a modal asks why) or Stop expediting."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from blocks.expedite_modal import expedite_modal
from blocks.ids import ActionId, CallbackId, Input
from triage.core.errors import LifecycleError
from triage.services import Services
from triage.slack.forms import read_state
from triage.slack.listeners import run

NOT_ALLOWED = "Only a leader or the SA who has this request can change whether it is expedited."


def _request_id(body: dict) -> int | None:
    raw = ((body.get("actions") or [{}])[0]).get("value") or ""
    return int(raw) if raw.isdigit() else None


async def on_expedite_click(ack, body, client, services: Services) -> None:
    await ack()
    user, request_id = body["user"]["id"], _request_id(body)
    request = await run(services.get, request_id) if request_id else None
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")

    async def tell(text: str) -> None:
        await client.chat_postEphemeral(channel=channel, user=user, text=text)

    if request is None:
        await tell("I can't find that request.")
        return
    if not (services.is_leader(user) or user == request.owner):
        await tell(NOT_ALLOWED)
        return
    if request.expedite:  # stopping needs no reason
        try:
            change = await run(services.set_expedite, request.id, user, False)
        except LifecycleError as e:
            await tell(str(e))
            return
        await tell(change.message)
        return
    await client.views_open(trigger_id=body["trigger_id"],
                            view=expedite_modal(str(request.id), reference=request.reference))


async def on_expedite_submit(ack, body, view, services: Services) -> None:
    user = body["user"]["id"]
    reason = (read_state(view["state"]["values"]).get(Input.EXPEDITE_WHY.value) or "").strip()
    if not reason:
        await ack(response_action="errors", errors={Input.EXPEDITE_WHY.value: "Say why it can't wait."})
        return
    raw = view.get("private_metadata") or ""
    if not raw.isdigit():
        await ack()
        return
    try:
        await run(services.set_expedite, int(raw), user, True, reason=reason)
    except LifecycleError as e:
        await ack(response_action="errors", errors={Input.EXPEDITE_WHY.value: str(e)})
        return
    await ack()


def register(app: AsyncApp, services: Services) -> None:
    @app.action(ActionId.EXPEDITE.value)
    async def expedite_click(ack, body, client):
        await on_expedite_click(ack, body, client, services)

    @app.view(CallbackId.EXPEDITE_MODAL.value)
    async def expedite_submit(ack, body, view):
        await on_expedite_submit(ack, body, view, services)
