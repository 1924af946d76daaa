"""The GitLab issue for a request: title and Markdown description, laid out like the SA request templates.

Every string that came from a person goes through gitlab_text.neutralize (or neutralize_title), so what
the AE wrote appears as written but can't run quick actions, notify people or inject HTML.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from triage.core.fields import ASK_LABELS, FIELD_LABELS, HOSTING_LABELS
from triage.core.gitlab_text import marker, neutralize, neutralize_title
from triage.core.labels import TYPE_LABEL

TITLE_MAX = 255

# Spelled out rather than strftime("%a %b") so the output doesn't depend on the process locale.
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Free-text sections that follow the asks, hosting and dates.
_LATER_TEXT = ("meeting_objective", "capabilities", "current_tools", "additional_context")


def _zone(name: str) -> tuple[tzinfo, str]:
    """The zone for an IANA name and the name to print; UTC when Slack gave us something unusable."""
    try:
        return ZoneInfo(name), name
    except (ZoneInfoNotFoundError, ValueError):
        return UTC, "UTC"


def _day(d: date) -> str:
    return f"{_DAYS[d.weekday()]} {d.day} {_MONTHS[d.month - 1]} {d.year}"


def format_when(when: datetime, first_tz: str, second_tz: str) -> str:
    """ "Tue 24 Nov 2026 15:00 EST (America/New_York) / 20:00 GMT (Europe/London)".

    The second zone repeats the day only when it differs, so late-evening times aren't misread.
    """
    zone1, name1 = _zone(first_tz)
    local1 = when.astimezone(zone1)
    text = f"{_day(local1)} {local1:%H:%M} {local1.tzname()} ({name1})"
    zone2, name2 = _zone(second_tz)
    if name2 == name1:
        return text
    local2 = when.astimezone(zone2)
    day2 = "" if local2.date() == local1.date() else f"{_day(local2)} "
    return f"{text} / {day2}{local2:%H:%M} {local2.tzname()} ({name2})"


def _safe_url(url: str) -> str | None:
    """An http(s) URL percent-encoded so it can't end a Markdown link early; None if not http(s)."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    # Keep what URLs need (and existing %-escapes); encode blanks, quotes, brackets, backticks.
    return quote(url.strip(), safe="/:?#@!$&*+,;=%~-._[]")


def _link(text: str, url: str | None) -> str:
    """A Markdown link whose visible text is neutralised user text; plain text when url isn't usable."""
    label = re.sub(r"([\[\]])", r"\\\1", neutralize(text))
    dest = _safe_url(url) if url else None
    return f"[{label}]({dest})" if dest else label


def _keep_breaks(text: str) -> str:
    """End lines with two spaces so GitLab shows the AE's line breaks (a bare newline is a soft break)."""
    return re.sub(r"(?<=\S)\n(?=[^\n])", "  \n", text)


def _section(heading: str, body: str) -> str:
    return f"## {heading}\n\n{body}"


def render_title(request_type: str, cleaned: Mapping[str, Any]) -> str:
    """ "[SA Activity] Acme Corp — Demo, Proof of value", at most 255 characters."""
    customer = neutralize_title(str(cleaned.get("customer_name") or "")) or "(no customer)"
    if request_type == "event" and cleaned.get("event_name"):
        detail = neutralize_title(str(cleaned["event_name"]))
    else:
        detail = ", ".join(ASK_LABELS[a] for a in cleaned.get("asks") or ())
    title = f"[{TYPE_LABEL[request_type]}] {customer}"
    if detail:
        title += f" — {detail}"
    return title if len(title) <= TITLE_MAX else title[: TITLE_MAX - 1].rstrip() + "…"


def render_issue(
    *,
    request_id: str,
    reference: str,
    request_type: str,
    cleaned: Mapping[str, Any],
    requester_name: str,
    requester_tz: str,
    queue_name: str,
    queue_tz: str,
    deadline: datetime,
    parent_url: str | None = None,
    opportunity_url: str | None = None,
    sla_text: str | None = None,
    notes: Sequence[str] = (),
) -> tuple[str, str]:
    """(title, description) of the GitLab issue for a validated request."""

    def text(field: str) -> str | None:
        value = cleaned.get(field)
        return _keep_breaks(neutralize(str(value))) if value not in (None, "", []) else None

    summary = [
        f"- **{FIELD_LABELS['customer_name']}:** {text('customer_name') or '(not given)'}",
        f"- **Request type:** {TYPE_LABEL[request_type]}",
        f"- **Queue:** {neutralize(queue_name)}",
        f"- **Reference:** {neutralize(reference)}",
    ]
    sections = [_section("Request", "\n".join(summary))]

    if cleaned.get("opportunity"):
        # Validated to 18 letters and digits, so it can't break out of the code span or the link.
        opp = (_link(f"Salesforce Opportunity {cleaned['opportunity']}", opportunity_url) if opportunity_url
               else f"Salesforce Opportunity id: `{cleaned['opportunity']}`")
        sections.append(_section("Opportunity", opp))
    if request_type == "follow_up" and (cleaned.get("parent_request") or parent_url):
        sections.append(
            _section("Parent request", _link(str(cleaned.get("parent_request") or parent_url), parent_url))
        )
    if cleaned.get("command_plan_url"):
        url = str(cleaned["command_plan_url"])
        sections.append(_section("Command Plan", _link(url, url)))
    if request_type == "event":
        event = [
            f"- **{FIELD_LABELS[f]}:** {text(f)}"
            for f in ("event_name", "event_location", "event_competency")
            if text(f)
        ]
        if isinstance(cleaned.get("event_date"), date):
            event.append(f"- **{FIELD_LABELS['event_date']}:** {_day(cleaned['event_date'])}")
        if event:
            sections.append(_section("Event", "\n".join(event)))
    sections += [
        _section(FIELD_LABELS[f], body) for f in ("why_now", "pain", "champion") if (body := text(f))
    ]
    if cleaned.get("asks"):
        sections.append(_section("Asks", "\n".join(f"- {ASK_LABELS[a]}" for a in cleaned["asks"])))
    if cleaned.get("hosting"):
        sections.append(_section("Hosting", HOSTING_LABELS[cleaned["hosting"]]))
    dates = [
        cleaned[f] for f in ("preferred_date_1", "preferred_date_2") if isinstance(cleaned.get(f), datetime)
    ]
    if dates:
        body = "\n".join(f"- {format_when(d, requester_tz, queue_tz)}" for d in dates)
        sections.append(_section("Preferred dates", body))
    sections += [_section(FIELD_LABELS[f], body) for f in _LATER_TEXT if (body := text(f))]
    if cleaned.get("expedite"):
        reason = text("expedite_reason")
        sections.append(
            _section(
                "Expedite",
                "**Expedited** — the requester asked for a shorter SLA."
                + (f"\n\n{reason}" if reason else ""),
            )
        )

    sections += [neutralize(n) for n in notes]
    footer = (
        f"---\n\nRequested by {neutralize(requester_name)} via Slack.  \n"
        f"SLA: allocate an SA by {format_when(deadline, queue_tz, requester_tz)}."
        + (f"  \nSLA clock: {neutralize(sla_text)}." if sla_text else "")
    )
    description = "\n\n".join([*sections, footer, marker(request_id)]) + "\n"
    return render_title(request_type, cleaned), description
