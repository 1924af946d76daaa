"""The request's fields, which the modal shows per type, and their validation.

`validate` takes the raw values read from the Slack view state and returns cleaned values plus one
friendly message per failing field, keyed by field name, which is also the modal's block_id and
action_id, so Slack shows each message inline.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from triage.core.salesforce import InvalidSalesforceId, parse_opportunity_id

REQUEST_TYPES: tuple[str, ...] = ("opportunity", "follow_up", "security_assessment", "event")
ASKS: tuple[str, ...] = (
    "demo",
    "technical_qa",
    "pov",
    "sow",
    "security_questionnaire",
    "architecture_review",
    "workshop",
    "rfp",
    "other",
)
HOSTING: tuple[str, ...] = ("self_managed", "saas", "dedicated", "undecided")

TYPE_LABELS: dict[str, str] = {
    "opportunity": "Opportunity (SA activity)",
    "follow_up": "Follow-up to an earlier request",
    "security_assessment": "Vendor security assessment",
    "event": "Event",
}
ASK_LABELS: dict[str, str] = {
    "demo": "Demo",
    "technical_qa": "Technical Q&A",
    "pov": "Proof of value",
    "sow": "SOW / services",
    "security_questionnaire": "Security questionnaire",
    "architecture_review": "Architecture review",
    "workshop": "Workshop",
    "rfp": "RFP / RFI",
    "other": "Other",
}
HOSTING_LABELS: dict[str, str] = {
    "self_managed": "Self-managed",
    "saas": "SaaS",
    "dedicated": "Dedicated",
    "undecided": "Not decided yet",
}

# How each field is named to people (modal labels, issue sections, error summaries).
FIELD_LABELS: dict[str, str] = {
    "request_type": "Request type",
    "queue": "Queue",
    "customer_name": "Customer",
    "opportunity": "Salesforce Opportunity",
    "command_plan_url": "Command Plan",
    "why_now": "Why now",
    "pain": "Identified pain",
    "champion": "Champion",
    "asks": "Asks",
    "hosting": "Hosting",
    "preferred_date_1": "Preferred date",
    "preferred_date_2": "Alternative date",
    "meeting_objective": "Meeting objective",
    "capabilities": "Capabilities",
    "current_tools": "Current tools",
    "additional_context": "Additional context",
    "parent_request": "Parent request",
    "expedite": "Expedite",
    "expedite_reason": "Why expedite",
    "event_name": "Event",
    "event_location": "Location",
    "event_competency": "Competency needed",
    "event_date": "Event date",
}

_COMMON = ("request_type", "queue", "customer_name")
_EXPEDITE = ("expedite", "expedite_reason")

# Which fields the modal shows for each type, in display order: the single source of truth.
FORM_FIELDS: dict[str, tuple[str, ...]] = {
    "opportunity": (
        *_COMMON,
        "opportunity",
        "command_plan_url",
        "why_now",
        "pain",
        "champion",
        "asks",
        "hosting",
        "preferred_date_1",
        "preferred_date_2",
        "meeting_objective",
        "capabilities",
        "current_tools",
        "additional_context",
        *_EXPEDITE,
    ),
    "follow_up": (
        *_COMMON,
        "opportunity",
        "parent_request",
        "asks",
        "hosting",
        "why_now",
        "preferred_date_1",
        "preferred_date_2",
        "meeting_objective",
        "additional_context",
        *_EXPEDITE,
    ),
    "security_assessment": (
        *_COMMON,
        "opportunity",
        "champion",
        "asks",
        "hosting",
        "preferred_date_1",
        "additional_context",
        *_EXPEDITE,
    ),
    "event": (
        *_COMMON,
        "event_name",
        "event_location",
        "event_competency",
        "event_date",
        "opportunity",
        "asks",
        "additional_context",
        *_EXPEDITE,
    ),
}

# expedite_reason is required only when expedite is ticked; validate() checks that.
REQUIRED: dict[str, frozenset[str]] = {
    "opportunity": frozenset(
        {*_COMMON, "opportunity", "command_plan_url", "why_now", "pain", "champion", "asks", "hosting"}
    ),
    "follow_up": frozenset({*_COMMON, "opportunity", "asks"}),
    "security_assessment": frozenset({*_COMMON, "opportunity", "asks", "hosting"}),
    "event": frozenset({*_COMMON, "event_name", "event_location", "event_competency", "event_date"}),
}

# The max_length the modal sets on each text input (Slack allows 1-3000, slack/limits.md). Input is
# refused above these, never truncated: a cut-off pain statement would misquote the AE.
MAX_LENGTH: dict[str, int] = {
    "customer_name": 255,
    "opportunity": 500,  # room for a pasted Salesforce URL
    "command_plan_url": 3000,
    "why_now": 3000,
    "pain": 3000,
    "champion": 255,
    "meeting_objective": 3000,
    "capabilities": 3000,
    "current_tools": 3000,
    "additional_context": 3000,
    "parent_request": 500,
    "expedite_reason": 1000,
    "event_name": 255,
    "event_location": 255,
    "event_competency": 255,
}
TEXT_FIELDS: frozenset[str] = frozenset(MAX_LENGTH)
MULTILINE: frozenset[str] = frozenset(
    {
        "why_now",
        "pain",
        "meeting_objective",
        "capabilities",
        "current_tools",
        "additional_context",
        "expedite_reason",
    }
)

_REQUIRED_MESSAGES: dict[str, str] = {
    "queue": "Choose the queue (region) that should pick this up.",
    "customer_name": "Enter the customer's name.",
    "opportunity": "Paste the Opportunity's Salesforce id or link.",
    "command_plan_url": "Paste the link to the Command Plan.",
    "why_now": "Say in a sentence or two why the customer needs this now.",
    "pain": "Describe the customer's pain in a sentence or two.",
    "champion": "Name the customer's champion.",
    "asks": "Pick at least one thing you need from the SA team.",
    "hosting": "Choose how the customer hosts (or 'Not decided yet').",
    "expedite_reason": "Say why this can't wait for the normal SLA, or untick Expedite.",
    "event_name": "Enter the event's name.",
    "event_location": "Say where the event is (city, venue or 'virtual').",
    "event_competency": "Say what expertise the SA needs to bring.",
    "event_date": "Pick the event's date.",
}

_SENTENCE_FIELDS = frozenset({"why_now", "pain"})
_MIN_WORDS = 6
_MIN_DISTINCT_WORDS = 4
_MIN_CONTENT_WORDS = 3

# Compared after lower-casing and turning punctuation into spaces, so "N/A", "n.a." and "see CP!" match.
_PLACEHOLDERS = frozenset(
    {
        "",  # "-", "?", "..."
        "tbd",
        "tba",
        "tbc",
        "na",
        "n a",
        "none",
        "nil",
        "todo",
        "to do",
        "unknown",
        "see command plan",
        "see the command plan",
        "see cp",
        "in command plan",
        "in the command plan",
        "see notes",
        "see above",
        "see below",
        "see opp",
        "see opportunity",
        "see salesforce",
        "see sfdc",
        "same as above",
    }
)
# Words placeholders and their padding are made of; a real sentence has at least a few others.
_FILLER_WORDS = frozenset(
    {
        "tbd",
        "tba",
        "tbc",
        "na",
        "n",
        "a",
        "none",
        "nil",
        "todo",
        "to",
        "do",
        "unknown",
        "see",
        "same",
        "as",
        "above",
        "below",
        "in",
        "the",
        "command",
        "plan",
        "cp",
        "notes",
        "opp",
        "opportunity",
        "salesforce",
        "sfdc",
        "for",
        "more",
        "details",
        "detail",
        "info",
        "information",
        "please",
        "refer",
        "per",
        "thanks",
        "thx",
        "etc",
    }
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class RequestFields(BaseModel):
    """The cleaned fields of a request, typed: what `validate` returns and what a request stores
    (as JSON), read back with dates and datetimes parsed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    request_type: str
    queue: str
    customer_name: str
    opportunity: str | None = None
    command_plan_url: str | None = None
    why_now: str | None = None
    pain: str | None = None
    champion: str | None = None
    asks: tuple[str, ...] = ()
    hosting: str | None = None
    preferred_date_1: datetime | None = None
    preferred_date_2: datetime | None = None
    meeting_objective: str | None = None
    capabilities: str | None = None
    current_tools: str | None = None
    additional_context: str | None = None
    parent_request: str | None = None
    expedite: bool = False
    expedite_reason: str | None = None
    event_name: str | None = None
    event_location: str | None = None
    event_competency: str | None = None
    event_date: date | None = None
    # Not typed by the AE: who they are, as the Slack submission says (so filing needs no users.info).
    requester_name: str | None = None

    @property
    def preferred_dates(self) -> tuple[datetime, ...]:
        return tuple(d for d in (self.preferred_date_1, self.preferred_date_2) if d is not None)

    def stored(self) -> dict[str, Any]:
        """JSON-ready, leaving out what was not given."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)


@dataclass(frozen=True)
class Validated:
    """cleaned: parsed values of the fields given; errors: field -> message for the user."""

    cleaned: dict[str, Any]
    errors: dict[str, str]

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def fields(self) -> RequestFields:
        """The cleaned values as a typed model (only when there are no errors)."""
        return RequestFields.model_validate(self.cleaned)


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _options(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [v for v in value if isinstance(v, str)]


def _sentence_error(field: str, text: str) -> str | None:
    """Why text isn't a real sentence (placeholder, too short, padding), or None if it is."""
    what = "why now" if field == "why_now" else "the customer's pain"
    normalised = " ".join(re.sub(r"[\W_]+", " ", text.lower()).split())
    if normalised in _PLACEHOLDERS:
        return f"“{text}” is a placeholder: describe {what} in a sentence or two ({_MIN_WORDS}+ words)."
    words = _WORD.findall(text.lower())
    if len(words) < _MIN_WORDS:
        return f"Describe {what} in a sentence or two: at least {_MIN_WORDS} words (now {len(words)})."
    content = {w for w in words if w not in _FILLER_WORDS}
    if len(set(words)) < _MIN_DISTINCT_WORDS or len(content) < _MIN_CONTENT_WORDS:
        return f"That reads like a placeholder: describe {what} in your own words, as a full sentence."
    return None


def _url_error(url: str) -> str | None:
    if any(ch.isspace() for ch in url):
        return "A link can't contain spaces; paste just the Command Plan's address."
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "Paste the full link to the Command Plan, starting with https://"
    return None


def _epoch(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def validate(
    values: Mapping[str, Any],
    *,
    now: datetime,
    queue_keys: Collection[str],
    tz: tzinfo = UTC,
) -> Validated:
    """Check a submission against the rules for its type; never raises for bad user input."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    request_type = _text(values.get("request_type"))
    if request_type not in REQUEST_TYPES:
        return Validated({}, {"request_type": "Choose what kind of request this is."})

    shown = FORM_FIELDS[request_type]
    required = REQUIRED[request_type]
    errors: dict[str, str] = {}
    cleaned: dict[str, Any] = {"request_type": request_type}

    expedite_raw = values.get("expedite")
    expedite = expedite_raw if isinstance(expedite_raw, bool) else "expedite" in _options(expedite_raw)
    cleaned["expedite"] = expedite

    for field in shown:
        if field in ("request_type", "expedite"):
            continue
        if field == "expedite_reason" and not expedite:
            continue  # a reason without the tick is ignored, so the issue doesn't look expedited
        is_required = field in required or field == "expedite_reason"
        value = values.get(field)

        if field in TEXT_FIELDS:
            text = _text(value)
            if not text:
                if is_required:
                    errors[field] = _REQUIRED_MESSAGES[field]
                continue
            limit = MAX_LENGTH[field]
            if len(text) > limit:
                errors[field] = f"Keep this under {limit} characters (now {len(text)})."
                continue
            error, parsed = _check_text(field, text)
            if error:
                errors[field] = error
            else:
                cleaned[field] = parsed
        elif field == "queue":
            queue = _text(value)
            if not queue:
                errors[field] = _REQUIRED_MESSAGES[field]
            elif queue not in queue_keys:
                errors[field] = f"“{queue}” isn't one of the queues; choose one from the list."
            else:
                cleaned[field] = queue
        elif field == "hosting":
            hosting = _text(value)
            if not hosting:
                if is_required:
                    errors[field] = _REQUIRED_MESSAGES[field]
            elif hosting not in HOSTING:
                errors[field] = "Choose one of the hosting options in the list."
            else:
                cleaned[field] = hosting
        elif field == "asks":
            asks = _options(value)
            unknown = [a for a in asks if a not in ASKS]
            if unknown:
                errors[field] = f"Choose asks from the list (“{unknown[0]}” isn't one)."
            elif not asks:
                if is_required:
                    errors[field] = _REQUIRED_MESSAGES[field]
            else:
                cleaned[field] = [a for a in ASKS if a in asks]
        elif field in ("preferred_date_1", "preferred_date_2"):
            if value is None or value == "":
                continue
            epoch = _epoch(value)
            if epoch is None:
                errors[field] = "Pick a date and time with the picker."
                continue
            when = datetime.fromtimestamp(epoch, UTC)
            if when < now:
                errors[field] = "That time has passed; pick one in the future."
            else:
                cleaned[field] = when
        elif field == "event_date":
            error, day = _check_event_date(value, now=now, tz=tz)
            if error:
                errors[field] = error
            elif day is not None:
                cleaned[field] = day
            elif is_required:
                errors[field] = _REQUIRED_MESSAGES[field]
    return Validated(cleaned, errors)


def _check_text(field: str, text: str) -> tuple[str | None, Any]:
    """(error, cleaned value) for a non-blank, not over-long text field."""
    if field == "opportunity":
        try:
            return None, parse_opportunity_id(text)
        except InvalidSalesforceId as exc:
            return str(exc), None
    if field == "command_plan_url":
        return _url_error(text), text
    if field in _SENTENCE_FIELDS:
        return _sentence_error(field, text), text
    return None, text


def _check_event_date(value: Any, *, now: datetime, tz: tzinfo) -> tuple[str | None, date | None]:
    """(error, date); (None, None) when no date was picked. An event sooner than its SLA is accepted:
    the SLA policy flags it as short notice (the handbook's 5 days is time to secure an SA, not a rule
    for the AE)."""
    raw = _text(value)
    if not raw:
        return None, None
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError(raw)
        day = date.fromisoformat(raw)
    except ValueError:
        return "Pick the event's date with the date picker.", None
    if day < now.astimezone(tz).date():
        return "That date has passed; pick the event's date (today or later).", None
    return None, day
