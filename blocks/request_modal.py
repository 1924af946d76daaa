"""The request modal (callback_id `sa_request_modal`); the small modals around a request are in
`blocks.small_modals`, the shapes both use in `blocks.modal_kit`.

Every input block has `block_id` == `action_id` == the field name, so a view_submission's
`view.state.values[name][name]` holds each answer (the listeners and the tests' payloads rely on it).

Pre-filled text that is longer than its field's `max_length` (a long message used with the message
shortcut): Slack rejects a view whose `initial_value` is longer than `max_length`, and cutting the
person's words silently is worse. So such text is moved to `additional_context`, under a line naming
the field it was meant for, and the field is left empty for the person to fill in; if
`additional_context` itself would then be too long (or is not on the form), the text is shortened
there with a note inside the value saying how much was left out, so the note reaches the GitLab issue
too. A context block at the top of the modal says which fields were affected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from blocks.ids import EXPEDITE_OPTION, CallbackId, Field
from blocks.modal_kit import MODAL_TITLE, input_block, modal, option
from blocks.small_modals import no_queues_modal
from blocks.text import (
    INPUT_MAX_LENGTH,
    OPTION_GROUP_LABEL_MAX,
    OPTION_TEXT_MAX,
    PLACEHOLDER_MAX,
    SELECT_OPTIONS_MAX,
    clip,
    escape,
    link,
    mrkdwn,
    plain,
)
from triage.core.fields import (
    ASK_LABELS,
    ASKS,
    FIELD_LABELS,
    FORM_FIELDS,
    HOSTING,
    HOSTING_LABELS,
    MAX_LENGTH,
    MULTILINE,
    REQUEST_TYPES,
    REQUIRED,
    TYPE_LABELS,
)

LABELS: dict[str, str] = {
    Field.REQUEST_TYPE: "Request type",
    Field.QUEUE: "Queue",
    Field.CUSTOMER_NAME: "Customer",
    Field.OPPORTUNITY: "Salesforce Opportunity",
    Field.COMMAND_PLAN_URL: "Command Plan",
    Field.WHY_NOW: "Why now?",
    Field.PAIN: "Customer pain",
    Field.CHAMPION: "Champion",
    Field.ASKS: "What do you need from the SA?",
    Field.HOSTING: "Hosting",
    Field.PREFERRED_DATE_1: "Preferred meeting time",
    Field.PREFERRED_DATE_2: "Alternative meeting time",
    Field.MEETING_OBJECTIVE: "Meeting objective",
    Field.CAPABILITIES: "Capabilities of interest",
    Field.CURRENT_TOOLS: "Current tools",
    Field.ADDITIONAL_CONTEXT: "Additional context",
    Field.PARENT_REQUEST: "Earlier request",
    Field.EXPEDITE: "Expedite",
    Field.EXPEDITE_REASON: "Why expedite?",
    Field.EVENT_NAME: "Event name",
    Field.EVENT_LOCATION: "Event location",
    Field.EVENT_COMPETENCY: "Competency needed",
    Field.EVENT_DATE: "Event date",
}

HINTS: dict[str, str] = {
    Field.REQUEST_TYPE: "Changing the type changes the questions below.",
    Field.QUEUE: "The SA team that should pick this up.",
    Field.OPPORTUNITY: "18-character Salesforce Opportunity id (starts with 006), or its URL",
    Field.COMMAND_PLAN_URL: "Link to the opportunity's Command Plan.",
    Field.WHY_NOW: "In full sentences: what changed, and why an SA is needed now.",
    Field.PAIN: "In full sentences, in the customer's words: what hurts today, and what it costs them.",
    Field.CHAMPION: "Name and role of the person at the customer who drives this.",
    Field.ASKS: "Pick every kind of help you expect.",
    Field.HOSTING: "How the customer runs, or plans to run, GitLab.",
    Field.PREFERRED_DATE_1: "In your time zone; the SA sees it in theirs.",
    Field.PREFERRED_DATE_2: "In your time zone; the SA sees it in theirs.",
    Field.MEETING_OBJECTIVE: "What the customer should leave the meeting with.",
    Field.CURRENT_TOOLS: "What they use today (source control, CI/CD, security, planning).",
    Field.PARENT_REQUEST: "Its reference (e.g. SAR-42) or its GitLab issue URL.",
    Field.EXPEDITE: "Only when the usual response time is too late; leaders see every expedite.",
    Field.EXPEDITE_REASON: "Required when Expedite is checked: what is lost if an SA joins later?",
    Field.EVENT_DATE: "Dates sooner than the event lead time need Expedite and a reason.",
}

PLACEHOLDERS: dict[str, str] = {
    Field.REQUEST_TYPE: "Choose a type",
    Field.QUEUE: "Choose a queue",
    Field.CUSTOMER_NAME: "Account name as in Salesforce",
    Field.OPPORTUNITY: "006… or a Salesforce link",
    Field.COMMAND_PLAN_URL: "https://…",
    Field.WHY_NOW: "e.g. The customer's CISO asked for a security review before they renew in March.",
    Field.PAIN: "e.g. Releases take two weeks because every pipeline is maintained by hand.",
    Field.CHAMPION: "e.g. Dana Kim, Director of Platform Engineering",
    Field.ASKS: "Choose one or more",
    Field.HOSTING: "Choose one",
    Field.PARENT_REQUEST: "SAR-42 or https://gitlab.com/…/issues/42",
    Field.EVENT_NAME: "e.g. DevOps World London",
    Field.EVENT_LOCATION: "City and venue, or Virtual",
    Field.EVENT_COMPETENCY: "e.g. security, CI/CD, AI",
    Field.EVENT_DATE: "Choose a date",
}

TEXT_FIELDS_EXCLUDED = frozenset(
    {
        Field.REQUEST_TYPE,
        Field.QUEUE,
        Field.ASKS,
        Field.HOSTING,
        Field.PREFERRED_DATE_1,
        Field.PREFERRED_DATE_2,
        Field.EVENT_DATE,
        Field.EXPEDITE,
        Field.COMMAND_PLAN_URL,
    }
)


# --- small builders ---------------------------------------------------------------------------


def _options_key(options: list[dict[str, Any]]) -> dict[str, Any]:
    """`options`, or `option_groups` of 100 when there are more than a select may hold."""
    if len(options) <= SELECT_OPTIONS_MAX:
        return {"options": options}
    groups = []
    for start in range(0, len(options), SELECT_OPTIONS_MAX):
        part = options[start : start + SELECT_OPTIONS_MAX]
        label = f"{start + 1}–{start + len(part)}"
        groups.append({"label": plain(label, OPTION_GROUP_LABEL_MAX), "options": part})
    return {"option_groups": groups}


def _placeholder(name: str) -> dict[str, Any] | None:
    text = PLACEHOLDERS.get(name)
    return plain(text, PLACEHOLDER_MAX) if text else None


# --- the request modal ------------------------------------------------------------------------


def max_length(field: str) -> int:
    """The field's `max_length` as Slack accepts it (1..3000)."""
    return max(1, min(MAX_LENGTH.get(field, INPUT_MAX_LENGTH), INPUT_MAX_LENGTH))


def request_modal(
    *,
    request_type: str = "opportunity",
    queues: Sequence[tuple[str, str]],
    initial: Mapping[str, Any] | None = None,
    private_metadata: str = "",
    duplicate_notice: str | None = None,
    notice_link: tuple[str, str] | None = None,
    lookup_opportunity: bool = False,
) -> dict[str, Any]:
    """The SA request form for `request_type`: one input block per field in `FORM_FIELDS[request_type]`.

    `queues` are `(key, name)` pairs; with none, this returns `no_queues_modal()`. `initial` maps field
    names to values to show: `str` for text and single selects, an iterable of values for `asks`,
    `datetime` (naive = UTC) or epoch seconds for the preferred dates, `date` or "YYYY-MM-DD" for
    `event_date`, `bool` for `expedite`. Values a select does not offer are left out (Slack rejects
    them). `duplicate_notice` is plain words shown, escaped, at the top, after `notice_link` (url, label: a link
    the app built, to the open request's issue) when given. `lookup_opportunity` (Salesforce
    is configured) makes the opportunity input send block_actions as the AE types or presses Enter, so the
    app can look the opportunity up and `views.update` the form with what Salesforce has.
    """
    if request_type not in REQUEST_TYPES:
        raise ValueError(f"unknown request type {request_type!r}")
    if not queues:
        return no_queues_modal()
    fields = FORM_FIELDS[request_type]
    required = REQUIRED[request_type]
    values, notes = _fit_prefill(fields, dict(initial or {}))

    blocks: list[dict[str, Any]] = []
    if duplicate_notice:
        lead = f":warning: {link(*notice_link)} " if notice_link else ""
        blocks.append({"type": "context", "elements": [mrkdwn(lead + clip(escape(duplicate_notice), 1800))]})
    if notes:
        blocks.append(
            {
                "type": "context",
                "elements": [mrkdwn(clip(escape(" ".join(notes)) + " Check them before you submit.", 2000))],
            }
        )
    for name in fields:
        block = _field_block(name, request_type, queues, values, optional=name not in required)
        if lookup_opportunity and name == Field.OPPORTUNITY:
            # Slack docs, input block `dispatch_action` and `dispatch_action_config.trigger_actions_on`.
            block["dispatch_action"] = True
            block["element"]["dispatch_action_config"] = {
                "trigger_actions_on": ["on_enter_pressed", "on_character_entered"]}
        blocks.append(block)
    return modal(
        CallbackId.SA_REQUEST_MODAL,
        MODAL_TITLE,
        blocks,
        submit="Submit",
        close="Cancel",
        private_metadata=private_metadata,
    )


def _field_block(
    name: str,
    request_type: str,
    queues: Sequence[tuple[str, str]],
    values: Mapping[str, Any],
    *,
    optional: bool,
) -> dict[str, Any]:
    label = LABELS.get(name) or FIELD_LABELS.get(name) or name.replace("_", " ").capitalize()
    hint = HINTS.get(name)
    value = values.get(name)
    element: dict[str, Any]

    if name == Field.REQUEST_TYPE:
        options = [option(t, TYPE_LABELS.get(t, t)) for t in REQUEST_TYPES]
        element = {
            "type": "static_select",
            "options": options,
            "initial_option": options[REQUEST_TYPES.index(request_type)],
        }
        block = input_block(name, label, element, optional=optional, hint=hint)
        # An input block with dispatch_action sends block_actions on selection, so the app can
        # views.update the form for the new type (Slack docs: input block, `dispatch_action`).
        block["dispatch_action"] = True
        return block
    if name == Field.QUEUE:
        options = [option(key, qname) for key, qname in queues]
        element = {"type": "static_select", **_options_key(options)}
        _set_initial_option(element, options, value)
    elif name in (Field.ASKS, Field.HOSTING):
        choices, labels = (ASKS, ASK_LABELS) if name == Field.ASKS else (HOSTING, HOSTING_LABELS)
        options = [option(v, labels.get(v, v)) for v in choices]
        if name == Field.ASKS:
            element = {"type": "multi_static_select", "options": options}
            chosen = [value] if isinstance(value, str) else list(value or ())
            picked = [o for o in options if o["value"] in chosen]
            if picked:
                element["initial_options"] = picked
        else:
            element = {"type": "static_select", "options": options}
            _set_initial_option(element, options, value)
    elif name in (Field.PREFERRED_DATE_1, Field.PREFERRED_DATE_2):
        element = {"type": "datetimepicker"}
        epoch = _epoch(value)
        if epoch is not None:
            element["initial_date_time"] = epoch
    elif name == Field.EVENT_DATE:
        element = {"type": "datepicker"}
        day = _iso_date(value)
        if day:
            element["initial_date"] = day
    elif name == Field.EXPEDITE:
        box = option(EXPEDITE_OPTION, "Expedite this request")
        box["description"] = plain(
            "Needs an SA sooner than the usual target; say why below.", OPTION_TEXT_MAX
        )
        element = {"type": "checkboxes", "options": [box]}
        if _checked(value):
            element["initial_options"] = [box]
    elif name == Field.COMMAND_PLAN_URL:
        element = {"type": "url_text_input"}
        if isinstance(value, str) and value.strip():
            element["initial_value"] = value.strip()
    else:
        element = {"type": "plain_text_input", "max_length": max_length(name)}
        if name in MULTILINE:
            element["multiline"] = True
        if isinstance(value, str) and value:
            element["initial_value"] = value
    placeholder = _placeholder(name)
    if placeholder and element["type"] not in ("checkboxes", "datetimepicker"):
        element["placeholder"] = placeholder
    return input_block(name, label, element, optional=optional, hint=hint)


def _set_initial_option(element: dict[str, Any], options: list[dict[str, Any]], value: Any) -> None:
    for opt in options:
        if isinstance(value, str) and opt["value"] == value:
            element["initial_option"] = opt
            return


def _epoch(value: Any) -> int | None:
    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _iso_date(value: Any) -> str | None:
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()).isoformat()
        except ValueError:
            return None
    return None


def _checked(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        return value == EXPEDITE_OPTION
    if isinstance(value, Iterable):
        return EXPEDITE_OPTION in value
    return False


def _is_text_field(name: str) -> bool:
    return name not in TEXT_FIELDS_EXCLUDED


def _shorten_with_note(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, ending with a note saying how much was left out.

    The note is part of the value on purpose: it reaches the GitLab issue, so nobody takes the
    shortened text for the whole message.
    """
    if len(text) <= limit:
        return text
    template = "\n[… {} more characters of the original message did not fit this field]"
    kept = limit - len(template.format(len(text)))  # the real count has no more digits than this
    if kept < 1:
        return clip(text, limit)
    return text[:kept].rstrip() + template.format(len(text) - kept)


def _fit_prefill(fields: Sequence[str], values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Make pre-filled text fit each field's max_length without dropping words silently (module doc)."""
    notes: list[str] = []
    extra = Field.ADDITIONAL_CONTEXT.value
    moved: list[str] = []
    for name in fields:
        value = values.get(name)
        if name == extra or not (_is_text_field(name) and isinstance(value, str)):
            continue
        if len(value) <= max_length(name):
            continue
        label = LABELS.get(name, name)
        if extra in fields:
            moved.append(f"{label} (too long for its field):\n{value}")
            values[name] = None
            notes.append(f"{label} was too long for its field and was moved to {LABELS[extra]}.")
        else:
            values[name] = _shorten_with_note(value, max_length(name))
            notes.append(f"{label} was too long and was shortened; a note in it says so.")
    if extra in fields:
        current = values.get(extra)
        parts = ([current] if isinstance(current, str) and current.strip() else []) + moved
        if parts:
            combined = "\n\n".join(parts)
            if len(combined) > max_length(extra):
                combined = _shorten_with_note(combined, max_length(extra))
                notes.append(f"{LABELS[extra]} was too long and was shortened; a note in it says so.")
            values[extra] = combined
    return values, notes
