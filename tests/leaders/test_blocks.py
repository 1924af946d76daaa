"""Issue 10: the summary and App Home blocks stay inside Slack's limits and escape what people typed."""

from __future__ import annotations

import json
from dataclasses import dataclass

from slack_sdk.models.views import View

from blocks.home import home_view
from blocks.summary import summary_blocks
from blocks.text import MESSAGE_BLOCKS_MAX, MODAL_BLOCKS_MAX
from tests.blocks.checks import check_limits, validate_message


@dataclass
class Line:
    reference: str
    customer_name: str
    queue: str = "amer-east"
    left: str = "3h late"
    late: bool = True
    at_risk: bool = False
    expedite: bool = False
    slack_url: str | None = "https://slack.com/archives/C0AMEREAST/p1762387200000100"
    gitlab_url: str | None = "https://gitlab.example.com/g/p/-/issues/1"


FIG = {"received": 3, "allocated": 2, "allocated_within_sla": 1, "attainment": 0.5,
       "time_to_allocate_hours": {"p50": 4.0, "p90": 9.5}, "open_unallocated": 1, "breached_open": 1,
       "declined": 0, "needs_info": 1}
SUMMARY = {"since": "2026-11-02", "until": "2026-11-08", "clock": "weekdays", "timezone": "UTC", "totals": FIG,
           "queues": [{"queue": f"q{i}", "name": f"Queue {i}", **FIG} for i in range(30)],
           "types": [], "sas": [{"slack_user": f"U0SA{i:05d}", "allocated": 1, "open": 2,
                                 "time_to_allocate_hours": {"p50": 1.0, "p90": 2.0}} for i in range(20)],
           "breach_reasons": {"capacity": 2, "no_context": 0, "late_triage": 1, "other": 0},
           "breach_reasons_unrecorded": 1}
NASTY = "<!channel> Acme & <Sons> *bold* " + "x" * 300


def test_summary_message_is_valid_and_escapes_customer_names():
    late = [Line(f"SAR-{i}", NASTY) for i in range(40)]
    blocks = summary_blocks(SUMMARY, late=late)
    validate_message({"text": "summary", "blocks": blocks})
    text = json.dumps(blocks)
    assert "<!channel>" not in text and "&lt;!channel&gt; Acme &amp; &lt;Sons&gt;" in text
    assert "and 30 more" in text  # ten shown
    assert len(blocks) <= MESSAGE_BLOCKS_MAX


def test_home_view_is_valid_for_every_role_at_once():
    lines = [Line(f"SAR-{i}", NASTY, slack_url=None, gitlab_url=None) for i in range(25)]
    view = home_view(summary=SUMMARY, late=lines, claims=lines, unclaimed=lines, mine=lines)
    View(**json.loads(json.dumps(view))).validate_json()
    check_limits(view["blocks"], max_blocks=MODAL_BLOCKS_MAX)
    assert view["type"] == "home"


def test_home_for_someone_new_says_how_to_start():
    view = home_view()
    text = json.dumps(view)
    assert "You have not filed a request yet" in text and "SLA summary" not in text and "Your work" not in text
