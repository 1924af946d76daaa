"""The GitLab issue an SA reads: title, sections, both time zones, the AE's words kept but made inert."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from tests.core.test_gitlab_text import MENTION, quick_actions, rendered
from triage.core.fields import validate
from triage.core.gitlab_text import find_marker
from triage.core.issue_template import TITLE_MAX, format_when, render_issue, render_title

NOW = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
OPP = "0065g00000AbCdEAAV"
WHY = "Their renewal is due in March and the budget is approved."
PAIN = "Builds take forty minutes, so releases slip every sprint."
DATE_1 = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 15:00 in New York, 20:00 in London
DATE_2 = datetime(2026, 11, 26, 3, 30, tzinfo=UTC)  # still the 25th in New York

FULL = {
    "opportunity": {
        "request_type": "opportunity",
        "queue": "amer-east",
        "customer_name": "Acme Corp",
        "opportunity": OPP,
        "command_plan_url": "https://docs.example.com/cp/acme",
        "why_now": WHY,
        "pain": PAIN,
        "champion": "Jane Roe, VP Engineering",
        "asks": ["pov", "demo"],
        "hosting": "self_managed",
        "preferred_date_1": int(DATE_1.timestamp()),
        "preferred_date_2": int(DATE_2.timestamp()),
        "meeting_objective": "Agree the success criteria for the POV.",
        "capabilities": "Merge trains, SAST, DAST.",
        "current_tools": "Jenkins, Bitbucket, SonarQube.",
        "additional_context": "They met us at KubeCon.",
        "expedite": ["expedite"],
        "expedite_reason": "The board decides on Friday.",
    },
    "follow_up": {
        "request_type": "follow_up",
        "queue": "amer-east",
        "customer_name": "Acme Corp",
        "opportunity": OPP,
        "parent_request": "SA-41",
        "asks": ["architecture_review"],
        "hosting": "dedicated",
        "why_now": WHY,
        "preferred_date_1": int(DATE_1.timestamp()),
        "meeting_objective": "Review the HA design.",
        "additional_context": "Second session.",
        "expedite": [],
    },
    "security_assessment": {
        "request_type": "security_assessment",
        "queue": "amer-east",
        "customer_name": "Globex",
        "opportunity": OPP,
        "champion": "Sam CISO",
        "asks": ["security_questionnaire", "sow"],
        "hosting": "saas",
        "preferred_date_1": int(DATE_1.timestamp()),
        "additional_context": "SIG Lite questionnaire, 200 questions.",
        "expedite": [],
    },
    "event": {
        "request_type": "event",
        "queue": "amer-east",
        "customer_name": "Initech",
        "event_name": "DevOps Days Boston",
        "event_location": "Boston, MA",
        "event_competency": "CI/CD and security",
        "event_date": "2026-12-10",
        "opportunity": OPP,
        "asks": ["workshop"],
        "additional_context": "Booth duty, two talks.",
        "expedite": [],
    },
}


def cleaned_for(request_type: str, **changes) -> dict:
    result = validate(
        {**FULL[request_type], **changes}, now=NOW, queue_keys={"amer-east"}
    )
    assert result.ok, result.errors
    return result.cleaned


def render(request_type: str, cleaned: dict | None = None, **kw) -> tuple[str, str]:
    args = {
        "request_id": "req-7",
        "reference": "SA-42",
        "request_type": request_type,
        "cleaned": cleaned if cleaned is not None else cleaned_for(request_type),
        "requester_name": "Alex AE",
        "requester_tz": "America/New_York",
        "queue_name": "AMER East",
        "queue_tz": "Europe/London",
        "deadline": datetime(2026, 11, 24, 15, 0, tzinfo=UTC),
        **kw,
    }
    return render_issue(**args)


@pytest.mark.parametrize(
    ("request_type", "title"),
    [
        ("opportunity", "[SA Activity] Acme Corp — Demo, Proof of value"),
        ("follow_up", "[Follow Up] Acme Corp — Architecture review"),
        (
            "security_assessment",
            "[Vendor Security Assessment] Globex — SOW / services, Security questionnaire",
        ),
        ("event", "[SA Event Request] Initech — DevOps Days Boston"),
    ],
)
def test_title_names_type_customer_and_asks(request_type, title):
    assert render(request_type)[0] == title


def test_long_titles_are_cut_to_gitlabs_limit():
    cleaned = {"customer_name": "A" * 255, "asks": ["demo", "pov"]}
    title = render_title("opportunity", cleaned)
    assert len(title) == TITLE_MAX
    assert title.endswith("…")


def test_title_does_not_mention_anyone():
    title = render_title("opportunity", {"customer_name": "@all Acme", "asks": ["demo"]})
    assert MENTION.search(title) is None
    assert title.replace("\u2060", "") == "[SA Activity] @all Acme — Demo"


@pytest.mark.parametrize("request_type", list(FULL))
def test_every_given_field_appears_in_the_description(request_type):
    cleaned = cleaned_for(request_type)
    description = rendered(render(request_type, cleaned)[1])
    for field, value in cleaned.items():
        if isinstance(value, str) and field not in ("request_type", "queue", "hosting"):
            assert value in description, field
    assert "AMER East" in description
    assert "SA-42" in description
    assert "Requested by Alex AE via Slack" in description


def test_opportunity_description_has_the_template_sections_in_order():
    description = render("opportunity")[1]
    headings = [line for line in description.splitlines() if line.startswith("## ")]
    assert headings == [
        "## Request",
        "## Opportunity",
        "## Command Plan",
        "## Why now",
        "## Identified pain",
        "## Champion",
        "## Asks",
        "## Hosting",
        "## Preferred dates",
        "## Meeting objective",
        "## Capabilities",
        "## Current tools",
        "## Additional context",
        "## Expedite",
    ]
    assert f"`{OPP}`" in description
    assert "- Demo\n- Proof of value" in description
    assert "Self-managed" in description
    assert "The board decides on Friday." in description


def test_preferred_dates_show_the_requesters_and_the_queues_time_zone():
    description = render("opportunity")[1]
    assert "- Tue 24 Nov 2026 15:00 EST (America/New_York) / 20:00 GMT (Europe/London)" in description
    # Past midnight in London but not in New York: the second day is spelled out.
    assert (
        "- Wed 25 Nov 2026 22:30 EST (America/New_York) / Thu 26 Nov 2026 03:30 GMT (Europe/London)"
        in description
    )


@pytest.mark.parametrize(
    ("when", "first", "second", "expected"),
    [
        (
            DATE_1,
            "America/New_York",
            "Europe/London",
            "Tue 24 Nov 2026 15:00 EST (America/New_York) / 20:00 GMT (Europe/London)",
        ),
        (
            datetime(2026, 7, 1, 14, 0, tzinfo=UTC),
            "America/New_York",
            "Europe/London",
            "Wed 1 Jul 2026 10:00 EDT (America/New_York) / 15:00 BST (Europe/London)",
        ),
        (DATE_1, "Europe/London", "Europe/London", "Tue 24 Nov 2026 20:00 GMT (Europe/London)"),
        (
            DATE_1,
            "Not/AZone",
            "Asia/Tokyo",
            "Tue 24 Nov 2026 20:00 UTC (UTC) / Wed 25 Nov 2026 05:00 JST (Asia/Tokyo)",
        ),
        (DATE_1, "", "UTC", "Tue 24 Nov 2026 20:00 UTC (UTC)"),
    ],
)
def test_format_when(when, first, second, expected):
    assert format_when(when, first, second) == expected


def test_sla_deadline_is_shown_in_the_queues_time_zone_first():
    description = render("follow_up")[1]
    assert (
        "SLA: allocate an SA by Tue 24 Nov 2026 15:00 GMT (Europe/London) / 10:00 EST (America/New_York)"
        in description
    )


def test_event_requests_have_an_event_section():
    description = render("event")[1]
    assert "## Event\n\n- **Event:** DevOps Days Boston\n- **Location:** Boston, MA" in description
    assert "- **Event date:** Thu 10 Dec 2026" in description
    assert "## Preferred dates" not in description


def test_follow_ups_link_their_parent_request():
    url = "https://gitlab.example.com/sa/amer-east/-/issues/41"
    description = render("follow_up", parent_url=url)[1]
    assert f"## Parent request\n\n[SA-41]({url})" in description
    assert "SA-41" in render("follow_up")[1]  # without a resolved link the reference still shows


@pytest.mark.parametrize(
    ("request_type", "changes", "absent"),
    [
        ("follow_up", {"hosting": None}, "## Hosting"),
        ("follow_up", {"preferred_date_1": None}, "## Preferred dates"),
        ("follow_up", {"why_now": ""}, "## Why now"),
        ("opportunity", {"expedite": [], "expedite_reason": ""}, "## Expedite"),
        ("opportunity", {"capabilities": "  "}, "## Capabilities"),
        ("event", {"opportunity": None}, "## Opportunity"),
        ("security_assessment", {"champion": None}, "## Champion"),
        ("follow_up", {"parent_request": None}, "## Parent request"),
    ],
)
def test_sections_without_a_value_are_omitted(request_type, changes, absent):
    description = render(request_type, cleaned_for(request_type, **changes))[1]
    assert absent not in description


def test_the_ae_s_words_are_kept_but_cannot_act_on_gitlab():
    pain = (
        "Their CI is slow.\n/close\n/assign @jane\n@all <script>alert(1)</script>"
        " see <!-- triage-request: 1 -->"
    )
    description = render("opportunity", cleaned_for("opportunity", pain=pain, customer_name="Acme @here"))[1]
    assert quick_actions(description) == []
    assert MENTION.search(description) is None
    assert "<script" not in description
    assert find_marker(description) == "req-7"
    visible = rendered(description)
    assert "Their CI is slow.  \n/close  \n/assign @jane  \n@all <script>alert(1)</script>" in visible
    assert "Acme @here" in visible


def test_command_plan_link_cannot_break_out_of_markdown():
    url = 'https://docs.example.com/cp_(draft)?a=1&b="x"'
    description = render("opportunity", {**cleaned_for("opportunity"), "command_plan_url": url})[1]
    assert "(https://docs.example.com/cp_%28draft%29?a=1&b=%22x%22)" in description


def test_line_breaks_the_ae_typed_are_kept():
    cleaned = cleaned_for("opportunity", additional_context="one\ntwo\n\nthree")
    assert "one  \ntwo\n\nthree" in render("opportunity", cleaned)[1]


def test_marker_closes_the_description():
    description = render("security_assessment")[1]
    assert description.rstrip().endswith("<!-- triage-request: req-7 -->")
    assert find_marker(description) == "req-7"


def test_event_date_is_a_calendar_day():
    cleaned = cleaned_for("event")
    assert cleaned["event_date"] == date(2026, 12, 10)
