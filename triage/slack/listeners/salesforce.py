"""Salesforce in the modal, and the technical outcome: prefill as the AE types the opportunity id, and the
outcome modal (asked when a request is marked done, reopened from the card's button, corrected by leaders)."""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt.async_app import AsyncApp

from blocks.ids import ActionId, CallbackId, Field, Input
from blocks.outcome_modal import outcome_modal
from blocks.request_modal import request_modal
from triage.core import fields
from triage.core.errors import LifecycleError, ValidationFailed
from triage.core.opportunity import validate_outcome
from triage.services import Services
from triage.slack.forms import read_state
from triage.slack.listeners import run

log = logging.getLogger(__name__)


def merge_prefill(values: dict[str, Any], prefill: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """What the AE typed wins; Salesforce fills only the fields still empty. Returns (values, filled)."""
    out = dict(values)
    filled = []
    for key, value in prefill.items():
        if not str(out.get(key) or "").strip():
            out[key] = value
            filled.append(key)
    return out, filled


async def prefill_view(services: Services, client, view: dict[str, Any], *, typed: str | None = None) -> None:
    """Look the opportunity up and redraw the modal with what Salesforce has (or what is wrong with it)."""
    values = read_state((view.get("state") or {}).get("values") or {})
    if typed is not None:
        values["opportunity"] = typed
    check = await run(services.check_opportunity, values.get("opportunity"))
    if check.verified is None:
        return  # not an id yet (still typing), or Salesforce is not configured
    if check.verified is False:
        notice = "Salesforce did not answer in time, so nothing was filled in; you can still submit."
        merged, filled = values, []
    elif check.error:
        notice, merged, filled = check.error + ".", values, []
    else:
        merged, filled = merge_prefill(values, check.prefill)
        if not filled:
            return  # nothing to add: leave the AE's form alone
        notice = None
    request_type = values.get("request_type") or "opportunity"
    if request_type not in fields.REQUEST_TYPES:
        return
    modal = request_modal(request_type=request_type, queues=[(q.key, q.name) for q in services.config.queues],
                          initial=merged, private_metadata=view.get("private_metadata") or "",
                          duplicate_notice=notice, lookup_opportunity=True)
    # hash: if the AE changed the form meanwhile (another update won), this one loses instead.
    resp = await client.views_update(view_id=view["id"], hash=view.get("hash"), view=modal)
    if not resp.get("ok"):
        log.info("prefill views.update refused: %s", resp.get("error"))


def register(app: AsyncApp, services: Services) -> None:
    @app.action(Field.OPPORTUNITY.value)
    async def opportunity_typed(ack, body, client):
        """The opportunity input dispatches as the AE types or presses Enter (Salesforce configured)."""
        await ack()
        action = (body.get("actions") or [{}])[0]
        await prefill_view(services, client, body["view"], typed=action.get("value"))

    @app.action(ActionId.RECORD_OUTCOME.value)
    async def open_outcome(ack, body, client):
        await ack()
        raw = (body.get("actions") or [{}])[0].get("value") or ""
        request = await run(services.get, int(raw)) if raw.isdigit() else None
        user = body["user"]["id"]
        if request is None:
            return
        if request.status != "done" or not services.may_record_outcome(request, user):
            from triage.slack.listeners.actions import tell

            await tell(client, body, "The technical outcome is recorded by the SA who had the request; a leader "
                                     "may correct it.")
            return
        await client.views_open(trigger_id=body["trigger_id"], view=outcome_view(request))

    @app.view(CallbackId.OUTCOME_MODAL.value)
    async def outcome_submitted(ack, body, view):
        values = read_state(view["state"]["values"])
        outcome, evidence = values.get(Input.OUTCOME.value), values.get(Input.EVIDENCE.value)
        errors = validate_outcome(outcome, evidence)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        raw = view.get("private_metadata") or ""
        if not raw.isdigit():
            await ack()
            return
        try:
            await run(services.record_outcome, int(raw), body["user"]["id"], outcome, evidence)
        except ValidationFailed as e:
            await ack(response_action="errors", errors=e.errors)
            return
        except LifecycleError as e:
            await ack(response_action="errors", errors={Input.OUTCOME.value: str(e)})
            return
        await ack()


def outcome_view(request) -> dict[str, Any]:
    return outcome_modal(str(request.id), reference=request.reference, customer=request.customer_name,
                         outcome=request.technical_outcome, evidence=request.outcome_evidence,
                         correcting=request.technical_outcome is not None)
