"""Modal submissions. The request modal: switching type, the Salesforce lookup as the opportunity id is
typed, validating (and checking the opportunity in Salesforce) before the ack, storing on submit.
The small modals about a request (needs info, decline, answer, breach reason, technical outcome) and the
GitLab username one."""

from __future__ import annotations

import logging
from datetime import UTC
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError

from blocks.ids import CallbackId, Field, Input
from blocks.outcome_modal import outcome_modal
from blocks.request_modal import request_modal
from blocks.small_modals import text_modal
from triage.core import fields
from triage.core.errors import DeliveryError, LifecycleError, NotAllowed, ValidationFailed
from triage.core.fields import RequestFields
from triage.core.opportunity import validate_outcome
from triage.core.salesforce import InvalidSalesforceId, parse_opportunity_id
from triage.services import Duplicate, Services, Submission, SubmitResult
from triage.services.group_commit import GroupCommit
from triage.slack.forms import ModalMeta, read_state
from triage.slack.listeners import bind, run
from triage.slack.listeners.directory import SaDirectory
from triage.slack.payloads import db_id

log = logging.getLogger(__name__)


def duplicate_notice(dup: Duplicate) -> dict[str, Any]:
    """The form's notice of an open request on the same opportunity: a link to its issue (when filed) and
    plain words, which the modal escapes."""
    words = (f"{'' if dup.url else dup.reference + ' '}is already open for this opportunity in "
             f"{dup.queue or 'a queue'} ({dup.status}). "
             "Submit again to file this one anyway, or close the form and add to the open one.")
    if dup.url:
        return {"duplicate_notice": words, "notice_link": (dup.url, dup.reference)}
    return {"duplicate_notice": ":warning: " + words}


def queue_choices(services: Services) -> list[tuple[str, str]]:
    return [(q.key, q.name) for q in services.config.queues]


def form(services: Services, **kw: Any) -> dict[str, Any]:
    """The request modal, with the opportunity lookup on when Salesforce is configured."""
    return request_modal(queues=queue_choices(services), lookup_opportunity=services.crm is not None, **kw)


# ---- the request modal

async def switch_type(ack, body, client, services: Services):
    """Choosing a type redraws the modal with that type's fields, keeping what was typed."""
    await ack()
    view = body["view"]
    values = read_state(view["state"]["values"])
    new_type = values.get("request_type") or "opportunity"
    if new_type not in fields.REQUEST_TYPES:
        return
    modal = form(services, request_type=new_type, initial=values,
                 private_metadata=view.get("private_metadata") or "")
    # hash: if the AE changed the type twice quickly, the older update loses instead of the newer.
    await update_modal(client, view, modal, why="new request type")


async def submit(ack, body, view, services: Services, intake: GroupCommit[Submission, SubmitResult | Duplicate]):
    user = body["user"]["id"]
    values = read_state(view["state"]["values"])
    meta = ModalMeta.load(view.get("private_metadata"))
    queue = services.config.queue(values.get("queue") or "")
    # "Not in the past" is judged by the queue's calendar day; an event sooner than its SLA is accepted.
    result = fields.validate(values, now=services.now(), queue_keys=services.config.queue_keys,
                             tz=queue.tz if queue else UTC)
    errors = dict(result.errors)
    verified = None
    if "opportunity" not in errors and values.get("opportunity") and services.crm is not None:
        # The opportunity is checked where it lives, within [salesforce] lookup_seconds (the check never
        # raises: Salesforce down or slow means "not verified", never a refusal), and cached briefly.
        # Without Salesforce there is nothing to ask, and no thread to wake.
        check = await run(services.check_opportunity, values.get("opportunity"),
                          request_type=result.cleaned.get("request_type") or "opportunity")
        verified = check.verified
        if check.error:
            errors["opportunity"] = check.error
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    # The AE's name comes with the submission, so filing the issue needs no Slack call.
    cleaned = {**result.cleaned, "requester_name": body["user"].get("name") or body["user"].get("username")}
    # Stored (with whatever else was submitted meanwhile, in one transaction) before the ack.
    res = await intake.submit(Submission(view["id"], user, RequestFields.model_validate(cleaned),
                                         meta.duplicate_ok, verified))
    if isinstance(res, Duplicate):
        meta.duplicate_ok = res.request_id
        await ack(response_action="update", view=form(
            services, request_type=cleaned["request_type"], initial=values,
            private_metadata=meta.dump(), **duplicate_notice(res)))
        return
    unverified = ("\n\n:warning: Salesforce did not answer in time, so the opportunity is not verified; the card "
                  "says so." if verified is False else "")
    await ack(response_action="update", view=text_modal(
        "Request saved",
        f"*{res.reference}* is saved. In a few seconds it will be on the GitLab board and in the queue's "
        "channel, and you'll get a DM with both links. If GitLab or Slack is slow it waits and lands "
        "by itself: nothing to redo." + unverified))


def merge_prefill(values: dict[str, Any], prefill: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """What the AE typed wins; Salesforce fills only the fields still empty. Returns (values, filled)."""
    out = dict(values)
    filled = []
    for key, value in prefill.items():
        if not str(out.get(key) or "").strip():
            out[key] = value
            filled.append(key)
    return out, filled


async def prefill_from_salesforce(services: Services, client, view: dict[str, Any], *, typed: str | None = None,
                                  values: dict[str, Any] | None = None) -> None:
    """Look the opportunity up and redraw the modal with what Salesforce has (or what is wrong with it).

    `values` are the form's values when the view has no state yet (just opened); else the state is read."""
    values = dict(values) if values is not None else read_state((view.get("state") or {}).get("values") or {})
    if typed is not None:
        values["opportunity"] = typed
    try:
        parse_opportunity_id(values.get("opportunity") or "")
    except InvalidSalesforceId:
        return  # not a whole id yet (still typing)
    request_type = values.get("request_type") or "opportunity"
    check = await run(services.check_opportunity, values.get("opportunity"), request_type=request_type)
    if check.verified is None:
        return  # Salesforce is not configured
    if check.verified is False:
        notice, merged = "Salesforce did not answer in time, so nothing was filled in; you can still submit.", values
    elif check.error:
        notice, merged = check.error + ".", values
    else:
        merged, filled = merge_prefill(values, check.prefill)
        if not filled:
            return  # nothing to add: leave the AE's form alone
        notice = None
    if request_type not in fields.REQUEST_TYPES:
        return
    modal = form(services, request_type=request_type, initial=merged,
                 private_metadata=view.get("private_metadata") or "", duplicate_notice=notice)
    # hash: if the AE changed the form meanwhile (another update won), this one loses instead.
    await update_modal(client, view, modal, why="Salesforce prefill")


async def update_modal(client, view: dict, modal: dict, *, why: str) -> None:
    """views.update of the modal the AE has open, if it is still as `view` saw it (its hash). Slack's
    refusal is one log line, not a traceback: `hash_conflict` means a newer update won, as intended,
    and an expired or closed view has nothing left to update."""
    try:
        await client.views_update(view_id=view["id"], hash=view.get("hash"), view=modal)
    except SlackApiError as e:
        error = e.response.get("error") if isinstance(e.response.data, dict) else e.response.status_code
        (log.info if error == "hash_conflict" else log.warning)("%s: views.update refused: %s", why, error)


async def opportunity_typed(ack, body, client, services: Services):
    """The opportunity input dispatches as the AE types or presses Enter (only with Salesforce configured)."""
    await ack()
    action = (body.get("actions") or [{}])[0]
    await prefill_from_salesforce(services, client, body["view"], typed=action.get("value"))


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


async def outcome_submit(ack, body, view, services: Services):
    values = read_state(view["state"]["values"])
    outcome, evidence = values.get(Input.OUTCOME.value), values.get(Input.EVIDENCE.value)
    errors = validate_outcome(outcome, evidence)
    request_id = meta_request_id(view)
    if errors or request_id is None:
        await ack(response_action="errors", errors=errors or {Input.OUTCOME.value: "That request no longer exists."})
        return
    try:
        await run(services.record_outcome, request_id, body["user"]["id"], outcome, evidence)
    except ValidationFailed as e:
        await ack(response_action="errors", errors=e.errors)
        return
    except LifecycleError as e:
        await ack(response_action="errors", errors={Input.OUTCOME.value: str(e)})
        return
    await ack()


def outcome_view(request) -> dict[str, Any]:
    """The outcome modal for a stored request (what it says now, when a leader corrects it)."""
    return outcome_modal(str(request.id), reference=request.reference, customer=request.customer_name,
                         outcome=request.technical_outcome, evidence=request.outcome_evidence,
                         correcting=request.technical_outcome is not None)


def register(app: AsyncApp, services: Services, sas: SaDirectory | None = None) -> None:
    sas = sas or SaDirectory(services)
    intake = GroupCommit(services.submit_many)
    app.view(CallbackId.SA_REQUEST_MODAL.value)(bind(submit, services=services, intake=intake))
    app.action(Field.REQUEST_TYPE.value)(bind(switch_type, services=services))
    app.action(Field.OPPORTUNITY.value)(bind(opportunity_typed, services=services))
    app.view(CallbackId.OUTCOME_MODAL.value)(bind(outcome_submit, services=services))
    app.view(CallbackId.NEEDS_INFO_MODAL.value)(bind(needs_info_submit, services=services, sas=sas))
    app.view(CallbackId.DECLINE_MODAL.value)(bind(decline_submit, services=services, sas=sas))
    app.view(CallbackId.ANSWER_MODAL.value)(bind(answer_submit, services=services))
    app.view(CallbackId.BREACH_REASON_MODAL.value)(bind(breach_reason_submit, services=services))
    app.view(CallbackId.GITLAB_USERNAME_MODAL.value)(bind(gitlab_username_submit, services=services))
