"""The request card (a top-level message in the queue's channel) and the short messages around it.

Every builder returns keyword arguments for `chat.postMessage` / `chat.update` / `chat.postEphemeral`
(`{"text": ..., "blocks": [...]}`); the caller adds `channel`, `ts`, `thread_ts`, `user`.

How the card's actions carry the request id (every action element's value carries the request's id,
and the app accepts it back unchanged):

- buttons (`claim`, `unclaim`, `needs_info`, `decline`, `open_issue`): `value` is the request id;
- `status` static_select: each option's `value` is `"{request_id}:{status}"`, because a select sends
  only the chosen option; `parse_status_value` splits it;
- `assign` users_select has no `value` in Slack's API, so the actions block's `block_id` is
  `"sa_card:{request_id}"`; `request_id_from_block_id` reads it (block_actions carry `block_id`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from blocks.ids import ActionId
from blocks.text import (
    BUTTON_URL_MAX,
    CONTEXT_ELEMENTS_MAX,
    HEADER_MAX,
    OPTION_VALUE_MAX,
    SECTION_FIELD_TEXT_MAX,
    SECTION_FIELDS_MAX,
    SECTION_TEXT_MAX,
    clip,
    date_token,
    escape,
    link,
    mrkdwn,
    plain,
    quote,
    user,
)
from triage.core.fields import ASK_LABELS, HOSTING_LABELS, TYPE_LABELS
from triage.core.lifecycle import ACTIVE_STATUSES, CLOSED_STATUSES, SETTABLE_STATUSES
from triage.core.opportunity import OUTCOME_LABELS, Outcome

STATUS_LABELS = {
    "open": "Open: waiting for an SA",
    "claimed": "Claimed",
    "doing": "Doing",
    "waiting": "Waiting on the requestor for more information",
    "followup": "Follow-up work required by the SA",
    "demo_ready": "Demo ready: scheduling can start",
    "done": "Done",
    "declined": "Declined",
}
# What the `status` select offers, in order: the board's workflow, then done.
STATUS_CHOICES: tuple[str, ...] = tuple(str(s) for s in SETTABLE_STATUSES)

CARD_BLOCK_PREFIX = "sa_card:"
# Display budgets. Besides the per-block limits, Slack refuses messages whose blocks hold too much
# text in total (`msg_blocks_too_long`, seen at ~13,200 characters: slackapi/bolt-js#2509, limits.md),
# so the card shows at most ~8,000 characters whatever people typed; the issue has the full text.
FIELD_DISPLAY = 300
LONG_TEXT_DISPLAY = 1000  # why now, pain
EXPEDITE_DISPLAY = 500
HISTORY_SHOWN = 5
HISTORY_LINE_DISPLAY = 200
FALLBACK_DISPLAY = 500
# The status option value is "{request_id}:{status}" and an option value holds 150 characters.
REQUEST_ID_MAX = OPTION_VALUE_MAX - 1 - max(len(s) for s in STATUS_CHOICES)


@dataclass(frozen=True)
class CardData:
    """What the card shows; built by the caller from the stored request (no I/O here)."""

    request_id: str
    reference: str  # "SAR-42"
    request_type: str
    queue_name: str
    customer_name: str
    requester: str  # Slack user id
    asks: tuple[str, ...] = ()
    why_now: str | None = None
    pain: str | None = None
    champion: str | None = None
    hosting: str | None = None
    opportunity_id: str | None = None
    expedite: bool = False
    expedite_reason: str | None = None
    event_name: str | None = None
    event_date: date | None = None
    event_location: str | None = None
    preferred_dates: tuple[datetime, ...] = ()
    deadline: datetime | None = None
    queue_tz: str | None = None  # IANA zone of the queue: the deadline is also shown in its local time
    time_left_text: str | None = None  # "due in 5h", "2h late"
    issue_url: str | None = None
    status: str = "open"  # open, claimed, doing, waiting, followup, demo_ready, done, declined
    owner: str | None = None  # Slack user id
    claimed_after_text: str | None = None  # "claimed after 3h"
    history: tuple[str, ...] = ()  # short audit lines, newest last
    opportunity_url: str | None = None  # the opportunity in Salesforce (`[salesforce] url`)
    sla_text: str | None = None  # the clock in words: "24 working hours: Friday 16:00 -> Monday 16:00 EST"
    short_notice: bool = False  # an event asked for with less time than its SLA
    opportunity_sa: str | None = None  # Slack id of the SA who already worked this opportunity
    opportunity_sa_ref: str | None = None  # ...on this earlier request
    salesforce_verified: bool | None = None  # False: Salesforce did not answer when it was submitted
    technical_outcome: str | None = None  # technical_win, technical_loss, withdrew, not_applicable
    outcome_evidence: str | None = None


def status_value(request_id: str, status: str) -> str:
    """The value of a `status` option: `"{request_id}:{status}"`."""
    return f"{request_id}:{status}"


def parse_status_value(value: str) -> tuple[str, str]:
    """`"{request_id}:{status}"` -> `(request_id, status)`; splits at the last colon."""
    request_id, sep, status = value.rpartition(":")
    if not sep or not request_id or not status:
        raise ValueError(f"not a status value: {value!r}")
    return request_id, status


def request_id_from_block_id(block_id: str) -> str | None:
    """The request id in the card's actions `block_id` (`"sa_card:{request_id}"`), else None."""
    if block_id.startswith(CARD_BLOCK_PREFIX) and len(block_id) > len(CARD_BLOCK_PREFIX):
        return block_id[len(CARD_BLOCK_PREFIX) :]
    return None


def request_card(card: CardData) -> dict[str, Any]:
    """The card in the queue's channel: what is asked, by whom, by when, and the SAs' actions."""
    if not card.request_id or len(card.request_id) > REQUEST_ID_MAX:
        raise ValueError(f"request id must be 1..{REQUEST_ID_MAX} characters")
    type_label = TYPE_LABELS.get(card.request_type, card.request_type)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": plain(
                f"{'⚡ ' if card.expedite else ''}{card.reference} · {type_label} · {card.customer_name}",
                HEADER_MAX,
            ),
        }
    ]
    fields = _fields(card)
    for start in range(0, len(fields), SECTION_FIELDS_MAX):
        blocks.append({"type": "section", "fields": fields[start : start + SECTION_FIELDS_MAX]})
    notes = []
    if card.short_notice:
        notes.append(":hourglass_flowing_sand: *Short notice*: the event is sooner than the time the SA team "
                     "has to secure an SA; the leaders have been told.")
    if card.opportunity_sa:
        earlier = f" on {escape(card.opportunity_sa_ref)}" if card.opportunity_sa_ref else ""
        notes.append(f":handshake: {user(card.opportunity_sa)} already worked this opportunity{earlier}: "
                     "the same SA stays with it for its lifetime.")
    if notes:
        blocks.append({"type": "section", "text": mrkdwn(clip("\n".join(notes), SECTION_TEXT_MAX))})
    if card.expedite:
        text = "*Expedite requested*"
        if card.expedite_reason:
            text += "\n" + quote(card.expedite_reason, EXPEDITE_DISPLAY)
        blocks.append({"type": "section", "text": mrkdwn(text)})
    for title, value in (("Why now", card.why_now), ("Pain", card.pain)):
        if value and value.strip():
            blocks.append({"type": "section", "text": mrkdwn(_long_text(title, value, card.issue_url))})
    if card.technical_outcome in set(Outcome):
        text = f"*Technical outcome:* {OUTCOME_LABELS[Outcome(card.technical_outcome)]}"
        if card.outcome_evidence and card.outcome_evidence.strip():
            text += "\n" + quote(card.outcome_evidence, LONG_TEXT_DISPLAY)
        blocks.append({"type": "section", "text": mrkdwn(text)})
    actions = _actions(card)
    if actions:
        blocks.append(
            {"type": "actions", "block_id": CARD_BLOCK_PREFIX + card.request_id, "elements": actions}
        )
    context = _context(card)
    if context:
        blocks.append({"type": "context", "elements": context})
    status = STATUS_LABELS.get(card.status, card.status)
    fallback = (
        f"{card.reference}: {type_label} request for {escape(card.customer_name)} "
        f"from {user(card.requester)} in {escape(card.queue_name)} ({status})"
    )
    return {"text": clip(fallback, FALLBACK_DISPLAY), "blocks": blocks}


def _field(label: str, value: str) -> dict[str, Any]:
    return mrkdwn(clip(f"*{label}*\n{clip(value, FIELD_DISPLAY)}", SECTION_FIELD_TEXT_MAX))


def _fields(card: CardData) -> list[dict[str, Any]]:
    status = escape(STATUS_LABELS.get(card.status, card.status))
    if card.owner:
        status += f" · {user(card.owner)}"
    fields = [
        _field("Requested by", user(card.requester)),
        _field("Queue", escape(card.queue_name)),
        _field("Status", status),
    ]
    if card.deadline is not None:
        due = date_token(card.deadline)
        if card.queue_tz:
            local = card.deadline.astimezone(ZoneInfo(card.queue_tz))
            due += f" · {local:%a %d %b %H:%M} {escape(local.tzname() or card.queue_tz)} (queue)"
        if card.time_left_text:
            due += f" ({escape(card.time_left_text)})"
        if card.sla_text:
            due += f"\n{escape(card.sla_text)}"
        fields.append(_field("SA needed by", due))
    if card.asks:
        fields.append(_field("Asks", escape(", ".join(ASK_LABELS.get(a, a) for a in card.asks))))
    if card.opportunity_id:
        opportunity = (link(card.opportunity_url, card.opportunity_id)
                       if card.opportunity_url and len(card.opportunity_url) <= BUTTON_URL_MAX // 2
                       else escape(card.opportunity_id))
        fields.append(_field("Opportunity", opportunity))
    if card.hosting:
        fields.append(_field("Hosting", escape(HOSTING_LABELS.get(card.hosting, card.hosting))))
    if card.champion:
        fields.append(_field("Champion", escape(card.champion)))
    if card.event_name:
        fields.append(_field("Event", escape(card.event_name)))
    if card.event_date:
        fields.append(_field("Event date", card.event_date.strftime("%a %d %b %Y")))
    if card.event_location:
        fields.append(_field("Location", escape(card.event_location)))
    if card.preferred_dates:
        fields.append(_field("Preferred times", "\n".join(date_token(d) for d in card.preferred_dates)))
    return fields


def _long_text(title: str, value: str, issue_url: str | None) -> str:
    """Title and quoted text; when shortened for the card, a note says where the full text is."""
    head = f"*{title}*\n"
    quoted = quote(value, limit=None)
    if len(quoted) <= LONG_TEXT_DISPLAY:
        return head + quoted
    quoted = clip(quoted, LONG_TEXT_DISPLAY)
    where = _url_link(issue_url, "the GitLab issue") if issue_url else "the GitLab issue (being filed)"
    return f"{head}{quoted}\n_Shortened here; the full text is in {where}._"


def _url_link(url: str, label: str) -> str:
    """A link to a URL the app got from GitLab or Slack; just the label for absurdly long URLs."""
    return link(url, label) if len(url) <= BUTTON_URL_MAX // 2 else escape(label)


def _button(text: str, action_id: ActionId, value: str, **extra: Any) -> dict[str, Any]:
    return {"type": "button", "text": plain(text), "action_id": action_id.value, "value": value, **extra}


def _actions(card: CardData) -> list[dict[str, Any]]:
    rid = card.request_id
    elements: list[dict[str, Any]] = []
    if card.status == "done":
        # The SA is asked when marking it done; this lets them answer later, and a leader correct it.
        label = "Correct outcome" if card.technical_outcome else "Record outcome"
        return [_button(label, ActionId.RECORD_OUTCOME, rid)]
    if card.status not in ACTIVE_STATUSES:
        return elements
    if card.issue_url and len(card.issue_url) <= BUTTON_URL_MAX:
        # A link button: Slack opens the URL and still sends a block_actions, which the app just acks.
        elements.append(_button("Open issue", ActionId.OPEN_ISSUE, rid, url=card.issue_url))
    is_event = card.request_type == "event"
    unallocated = card.status == "open" or not card.owner
    if unallocated:
        if is_event:
            # Events are assigned by leaders, not claimed; the app checks who picked.
            elements.append(
                {
                    "type": "users_select",
                    "action_id": ActionId.ASSIGN.value,
                    "placeholder": plain("Assign an SA"),
                }
            )
        else:
            elements.append(_button("Claim", ActionId.CLAIM, rid, style="primary"))
    else:
        select: dict[str, Any] = {
            "type": "static_select",
            "action_id": ActionId.STATUS.value,
            "placeholder": plain("Set status"),
            "options": [_status_option(rid, s) for s in STATUS_CHOICES],
        }
        if card.status in STATUS_CHOICES:
            select["initial_option"] = _status_option(rid, card.status)
        elements.append(select)
        if is_event:
            elements.append(
                {
                    "type": "users_select",
                    "action_id": ActionId.ASSIGN.value,
                    "placeholder": plain("Reassign"),
                    "initial_user": card.owner,
                }
            )
        elements.append(
            _button(
                "Unassign" if is_event else "Unclaim",
                ActionId.UNCLAIM,
                rid,
                confirm={
                    "title": plain("Release this request?"),
                    "text": plain("It goes back to the queue and its SLA clock keeps running."),
                    "confirm": plain("Release"),
                    "deny": plain("Keep it"),
                },
            )
        )
    elements.append(_button("Needs info", ActionId.NEEDS_INFO, rid))
    # Leaders and the claimer may expedite (or stop); the app checks who clicked.
    elements.append(_button("Stop expediting" if card.expedite else "Expedite", ActionId.EXPEDITE, rid))
    elements.append(_button("Decline", ActionId.DECLINE, rid, style="danger"))
    return elements


def _status_option(request_id: str, status: str) -> dict[str, Any]:
    return {"text": plain(STATUS_LABELS[status]), "value": status_value(request_id, status)}


def _context(card: CardData) -> list[dict[str, Any]]:
    lines: list[str] = []
    if card.status == "done":
        lines.append(":white_check_mark: Done" + (f" by {user(card.owner)}" if card.owner else ""))
    elif card.status == "declined":
        lines.append(":no_entry_sign: Declined")
    if card.status in CLOSED_STATUSES and card.issue_url:
        lines.append(_url_link(card.issue_url, "GitLab issue"))
    elif card.status in ACTIVE_STATUSES and not card.issue_url:
        lines.append("GitLab issue: being filed")
    if card.claimed_after_text:
        lines.append(clip(escape(card.claimed_after_text), HISTORY_LINE_DISPLAY))
    if card.salesforce_verified is False:
        lines.append(":warning: Opportunity not verified: Salesforce did not answer when this was submitted")
    elements = [mrkdwn(clip(" · ".join(lines), FIELD_DISPLAY * 2))] if lines else []
    room = CONTEXT_ELEMENTS_MAX - len(elements)
    history = card.history[-min(HISTORY_SHOWN, room) :] if room > 0 else ()
    elements.extend(mrkdwn(clip(escape(line), HISTORY_LINE_DISPLAY)) for line in history if line.strip())
    return elements


def landed_dm(card: CardData, channel_permalink: str | None) -> dict[str, Any]:
    """The requester's DM once the request is filed: where it is and by when an SA should have it."""
    type_label = TYPE_LABELS.get(card.request_type, card.request_type)
    text = (
        f"Your request *{escape(card.reference)}* ({escape(type_label)} · {escape(card.customer_name)}) "
        f"landed in *{escape(card.queue_name)}*."
    )
    if card.deadline is not None:
        text += f" An SA should pick it up by {date_token(card.deadline)}"
        text += f" ({escape(card.time_left_text)})." if card.time_left_text else "."
        if card.sla_text:
            text += f"\nSLA clock: {escape(card.sla_text)}."
    links = []
    if channel_permalink:
        links.append(_url_link(channel_permalink, "See it in the channel"))
    if card.issue_url:
        links.append(_url_link(card.issue_url, "GitLab issue"))
    blocks: list[dict[str, Any]] = [{"type": "section", "text": mrkdwn(clip(text, SECTION_TEXT_MAX))}]
    if links:
        blocks.append({"type": "context", "elements": [mrkdwn(" · ".join(links))]})
    fallback = f"Your request {card.reference} landed in {escape(card.queue_name)}."
    return {"text": fallback, "blocks": blocks}


def queued_dm(reference: str, service: str = "GitLab") -> dict[str, Any]:
    """The requester's DM when filing waits on a slow service: nothing is lost, nothing to redo."""
    text = (
        f"{escape(service)} is slow; your request *{escape(reference)}* is saved and will be filed "
        "as soon as it answers — nothing to redo."
    )
    return {"text": text, "blocks": [{"type": "section", "text": mrkdwn(text)}]}


def needs_info_dm(reference: str, request_id: str, question: str, asked_by: str | None) -> dict[str, Any]:
    """The requester's DM when an SA needs more information, with a button to answer in a modal."""
    text = f"{user(asked_by)} needs more information on your request *{escape(reference)}*:"
    blocks = [
        {"type": "section", "text": mrkdwn(f"{text}\n{quote(question, SECTION_TEXT_MAX - len(text) - 1)}")},
        {
            "type": "actions",
            "block_id": CARD_BLOCK_PREFIX + request_id,
            "elements": [_button("Answer", ActionId.ANSWER, request_id, style="primary")],
        },
    ]
    return {"text": f"{text} {escape(clip(question, 200))}", "blocks": blocks}


def thread_reply(text: str) -> dict[str, Any]:
    """A reply in the card's thread. `text` is mrkdwn: escape people's words with `blocks.text.escape`."""
    return {"text": text}


def ephemeral(text: str) -> dict[str, Any]:
    """An only-you-can-see-this message (chat.postEphemeral or a respond()). `text` is mrkdwn."""
    return {"text": text}
