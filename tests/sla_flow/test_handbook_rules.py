"""Issue 8: the SLA rules as the SA handbook states them, end to end.

The real app, the fake Slack and GitLab servers and `run_once(settings, now)`. The config here is the
shipped defaults (`[sla.targets]` left out: 48h for triage-board activity, 5d for events, 24h expedite,
`event_lead` 1d) on a weekdays clock, with one queue of each engagement model:

* amer-east (America/New_York): ``engagement = "triage_board"``, the default;
* emea (Europe/London): ``engagement = "enterprise"``: an opportunity request gets 24h to allocate.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from tests.conftest import AE, AMER_CHANNEL, EMEA_CHANNEL, LEADER, LEADERS_CHANNEL, SA1, SA2, SA_GROUP, wait_for
from tests.flows.test_intake import GOOD
from tests.flows.test_work import click, hook
from tests.sla_flow.conftest import PROJECT, card_ts, events, leaders_posts, request_row, submit_direct
from triage.core.fields import RequestFields
from triage.services import Duplicate, Services, Submission
from triage.worker import run_once

NY, LONDON = ZoneInfo("America/New_York"), ZoneInfo("Europe/London")
H = timedelta(hours=1)
SF = "https://acme.lightning.force.com"
OPP = GOOD["opportunity"]

HANDBOOK_TOML = f"""
[slack]
leaders = ["{LEADER}"]
leaders_channel = "{LEADERS_CHANNEL}"

[sla]
clock = "weekdays"
reminders = [0.5, 0.75]
event_lead = "1d"

[[queues]]
key = "amer-east"
name = "AMER East"
gitlab_project = "sa-triage-boards/amer-east"
slack_channel = "{AMER_CHANNEL}"
timezone = "America/New_York"
holidays = "US"
sa_usergroup = "{SA_GROUP}"

[[queues]]
key = "emea"
name = "EMEA"
gitlab_project = "sa-triage-boards/emea"
slack_channel = "{EMEA_CHANNEL}"
timezone = "Europe/London"
holidays = "GB"
sa_users = ["{SA2}"]
engagement = "enterprise"

[salesforce]
url = "{SF}"
"""

EVENT = {
    "request_type": "event", "queue": "amer-east", "customer_name": "DevOps Days Boston",
    "event_name": "DevOps Days", "event_location": "Boston", "event_competency": "CI/CD",
}


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "triage.toml"
    path.write_text(HANDBOOK_TOML)
    return path


@pytest.fixture
def services(client, settings) -> Services:
    from triage.db import make_engine

    return Services(settings, make_engine(settings.database_url))


def card(fake_slack, request_id: int, channel: str = AMER_CHANNEL) -> dict:
    ts = card_ts(fake_slack, request_id, channel)
    return next(m for m in fake_slack.messages_in(channel, top_level_only=True) if m["ts"] == ts)


def card_text(fake_slack, request_id: int, channel: str = AMER_CHANNEL) -> str:
    return json.dumps(card(fake_slack, request_id, channel)["blocks"], ensure_ascii=False)


def thread_texts(fake_slack, request_id: int, channel: str = AMER_CHANNEL) -> list[str]:
    ts = card_ts(fake_slack, request_id, channel)
    return [m.get("text") or "" for m in fake_slack.messages_in(channel, thread_ts=ts)]


def dms_to(fake_slack, user: str) -> list[str]:
    return [(m.get("text") or "") + json.dumps(m.get("blocks") or [], ensure_ascii=False)
            for m in fake_slack.messages_in(user)]


# Friday 4 Dec 2026, 16:00 in New York (21:00 UTC) and 16:00 in London (16:00 UTC).
FRI_NY = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)
FRI_LDN = datetime(2026, 12, 4, 16, 0, tzinfo=UTC)


# ---------------------------------------------------------------- engagement models


def test_opportunity_on_a_triage_board_gets_48_working_hours(services, fake_slack, fake_gitlab, settings):
    rid = submit_direct(services, now=FRI_NY, key="V-tb")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    row = request_row(settings, rid)
    assert row.deadline == datetime(2026, 12, 8, 21, 0, tzinfo=UTC)  # Tuesday 16:00 New York
    assert fake_gitlab.issues(PROJECT)[0]["due_date"] == "2026-12-08"
    # The clock in words, on the card and in the issue.
    assert "48 working hours: Friday 16:00 → Tuesday 16:00 EST" in card_text(fake_slack, rid)
    assert "48 working hours: Friday 16:00 → Tuesday 16:00 EST" in fake_gitlab.issues(PROJECT)[0]["description"]


def test_opportunity_on_an_enterprise_queue_gets_24_working_hours(services, fake_slack, fake_gitlab, settings):
    rid = submit_direct(services, now=FRI_LDN, key="V-ent", queue="emea")
    run_once(settings, FRI_LDN + timedelta(minutes=1))
    row = request_row(settings, rid)
    assert row.deadline == datetime(2026, 12, 7, 16, 0, tzinfo=UTC)  # Monday 16:00 London
    assert "24 working hours: Friday 16:00 → Monday 16:00 GMT" in card_text(fake_slack, rid, EMEA_CHANNEL)
    landed = dms_to(fake_slack, AE)[-1]
    assert "24 working hours: Friday 16:00 → Monday 16:00 GMT" in landed
    # A follow-up on the same enterprise queue keeps the triage-board 48h: only opportunities get 24h.
    policy = settings.config.policy("emea")
    assert str(policy.target("follow_up", False)) == "48h"


# ---------------------------------------------------------------- Expedite is a label


def test_expedite_label_on_the_board_retargets_mid_clock_and_removing_it_restores(
        services, client, fake_slack, fake_gitlab, settings):
    rid = submit_direct(services, now=FRI_NY, key="V-exp")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    assert request_row(settings, rid).deadline == datetime(2026, 12, 8, 21, 0, tzinfo=UTC)

    # Monday 10:00 New York: someone adds Expedite on the board (an Issue Hook, as GitLab sends it).
    monday = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)
    labels = [*fake_gitlab.issue(PROJECT, 1)["labels"], "Expedite"]
    payload = fake_gitlab.edit_issue_as_user(PROJECT, 1, labels=labels)
    assert payload["object_kind"] == "issue" and "Expedite" in json.dumps(payload["labels"])
    # The app reads its clock when the hook arrives: it arrives on Monday, whatever day the test runs.
    with freeze_time(monday - timedelta(minutes=1), tick=True):
        r = hook(client, payload, uuid="exp-1")
    assert r.status_code == 200 and r.json()["result"] == "applied: expedited"
    row = request_row(settings, rid)
    assert row.expedite is True
    assert row.deadline == datetime(2026, 12, 7, 21, 0, tzinfo=UTC)  # 24 working hours: Monday 16:00
    run_once(settings, monday)
    assert fake_gitlab.issue(PROJECT, 1)["due_date"] == "2026-12-07"
    said = next(t for t in thread_texts(fake_slack, rid) if "expedited this request" in t)
    assert "24 working hours (expedited): Friday 16:00 → Monday 16:00" in said
    assert "⚡" in card_text(fake_slack, rid)

    # Removed again: the 48h target and Tuesday's due date come back.
    labels = [lbl for lbl in fake_gitlab.issue(PROJECT, 1)["labels"] if lbl != "Expedite"]
    with freeze_time(monday + H - timedelta(minutes=1), tick=True):
        r = hook(client, fake_gitlab.edit_issue_as_user(PROJECT, 1, labels=labels), uuid="exp-2")
    assert r.json()["result"] == "applied: no longer expedited"
    run_once(settings, monday + H)
    assert request_row(settings, rid).deadline == datetime(2026, 12, 8, 21, 0, tzinfo=UTC)
    assert fake_gitlab.issue(PROJECT, 1)["due_date"] == "2026-12-08"
    assert any("stopped expediting" in t for t in thread_texts(fake_slack, rid))


def test_expedite_label_seen_by_drift_repair_when_the_hook_was_lost(services, fake_slack, fake_gitlab, settings):
    # GitLab's clock as the app's: the issue is filed and edited on Friday, whatever day the test runs.
    fake_gitlab.set_time(FRI_NY)
    rid = submit_direct(services, now=FRI_NY, key="V-drift")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    labels = [*fake_gitlab.issue(PROJECT, 1)["labels"], "Expedite"]
    fake_gitlab.set_time(FRI_NY + 5 * timedelta(minutes=1))
    fake_gitlab.edit_issue_as_user(PROJECT, 1, labels=labels)  # no hook reaches the app
    run_once(settings, FRI_NY + 10 * timedelta(minutes=1))  # past the drift-repair interval
    row = request_row(settings, rid)
    assert row.expedite is True and row.deadline == datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
    run_once(settings, FRI_NY + 11 * timedelta(minutes=1))
    assert fake_gitlab.issue(PROJECT, 1)["due_date"] == "2026-12-07"
    assert any("expedited this request" in t for t in thread_texts(fake_slack, rid))


def test_expedite_never_lengthens_a_shorter_target(settings):
    policy = settings.config.policy("emea")
    from triage.core.sla import parse_duration
    from triage.core.sla_policy import SlaPolicy

    short = SlaPolicy(policy.calendar, {**policy.targets, "opportunity": parse_duration("4h")})
    assert str(short.target("opportunity", True)) == "4h"


def test_expedite_from_the_card_by_a_leader_with_a_reason(services, client, fake_slack, fake_gitlab, settings):
    rid = submit_direct(services, now=FRI_NY, key="V-exp-slack")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    msg = card(fake_slack, rid)

    click(client, fake_slack, msg, "expedite_request", AE)  # the AE is neither leader nor claimer
    wait_for(lambda: any("Only a leader or the SA who has this request" in c.args.get("text", "")
                         for c in fake_slack.calls_to("chat.postEphemeral")), what="the refusal")
    assert not fake_slack.calls_to("views.open")

    click(client, fake_slack, msg, "expedite_request", LEADER)
    view = wait_for(lambda: fake_slack.calls_to("views.open"), what="the expedite modal")[-1].args["view"]
    view = view if isinstance(view, dict) else json.loads(view)
    assert view["callback_id"] == "sa_expedite_modal"
    from tests.conftest import post_slack_payload, submission_payload

    r = post_slack_payload(client, submission_payload(view, {"expedite_why": "Exec briefing moved to Monday."},
                                                      user=LEADER))
    assert r.status_code == 200
    row = wait_for(lambda: (r := request_row(settings, rid)).expedite and r, what="the expedite")
    assert row.expedite is True and row.deadline == datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
    run_once(settings, datetime.now(UTC))
    issue = fake_gitlab.issue(PROJECT, 1)
    assert "Expedite" in issue["labels"] and issue["due_date"] == "2026-12-07"
    # Found by what it says, not as the last message: run on a later day, the sweep at the real clock
    # has posted the SLA reminder after it.
    said = next(t for t in thread_texts(fake_slack, rid) if "expedited this request" in t)
    assert f"<@{LEADER}> expedited this request" in said and "Exec briefing moved to Monday." in said


# ---------------------------------------------------------------- events


def test_event_nine_days_ahead_gets_its_five_day_sla(services, fake_slack, settings):
    rid = submit_direct(services, now=FRI_NY, key="V-ev9", **EVENT, event_date="2026-12-13")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    row = request_row(settings, rid)
    assert row.deadline == datetime(2026, 12, 11, 21, 0, tzinfo=UTC)  # 5 working days: next Friday 16:00
    assert events(settings, rid, "short_notice") == []
    assert "Short notice" not in card_text(fake_slack, rid)
    assert not [p for p in leaders_posts(fake_slack) if "Short notice" in p]


def test_event_four_days_ahead_is_accepted_flagged_and_due_a_day_before(services, fake_slack, fake_gitlab,
                                                                          settings):
    # Filed Friday for Tuesday: sooner than 5 days, accepted (validation no longer refuses it).
    rid = submit_direct(services, now=FRI_NY, key="V-ev4", **EVENT, event_date="2026-12-08")
    row = request_row(settings, rid)
    assert row.deadline == datetime(2026, 12, 7, 0, 0, tzinfo=NY).astimezone(UTC)  # a day before the event
    run_once(settings, FRI_NY + timedelta(minutes=1))
    assert "Short notice" in card_text(fake_slack, rid)
    assert "cut to 1 day before the event" in card_text(fake_slack, rid)
    posts = [p for p in leaders_posts(fake_slack) if "Short notice" in p]
    assert len(posts) == 1 and f"<@{LEADER}>" in posts[0] and "Assign an SA" in posts[0]
    assert "Short notice" in fake_gitlab.issues(PROJECT)[0]["description"]
    assert fake_gitlab.issues(PROJECT)[0]["due_date"] == "2026-12-07"


def test_event_too_close_even_for_the_lead_time_is_filed_and_due_at_once(services, fake_slack, settings):
    rid = submit_direct(services, now=FRI_NY, key="V-ev0", **EVENT, event_date="2026-12-05")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    row = request_row(settings, rid)
    assert row.deadline == FRI_NY and row.gitlab_iid is not None
    assert "due at once" in card_text(fake_slack, rid)


def test_event_reminders_go_to_the_leaders_who_assign(services, fake_slack, settings):
    rid = submit_direct(services, now=FRI_NY, key="V-evr", **EVENT, event_date="2026-12-20")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    run_once(settings, datetime(2026, 12, 10, 12, 0, tzinfo=UTC))  # past half of 5 working days
    reminders = [t for t in thread_texts(fake_slack, rid) if "SLA is used" in t]
    assert reminders and f"<@{LEADER}>" in reminders[0] and "Assign an SA" in reminders[0]
    assert "Claim it" not in reminders[0] and f"<!subteam^{SA_GROUP}>" not in reminders[0]


# ---------------------------------------------------------------- labels with consequences


def test_vendor_security_assessment_gets_security_audit(services, fake_gitlab, settings):
    submit_direct(services, now=FRI_NY, key="V-vsa", request_type="security_assessment",
                  asks=["security_questionnaire"], why_now=None, pain=None, champion=None, command_plan_url=None)
    run_once(settings, FRI_NY + timedelta(minutes=1))
    labels = fake_gitlab.issues(PROJECT)[0]["labels"]
    assert "Vendor Security Assessment" in labels and "Security Audit" in labels


def test_demo_ready_tells_the_ae_scheduling_can_start(services, fake_slack, settings):
    rid = submit_direct(services, now=FRI_NY, key="V-demo")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    services.claim(rid, SA1, now=FRI_NY + H)
    services.set_status(rid, SA1, "demo_ready", now=FRI_NY + 2 * H)
    run_once(settings, FRI_NY + 2 * H)
    assert any("scheduling" in t and "can start" in t for t in dms_to(fake_slack, AE))
    assert "Demo ready: scheduling can start" in card_text(fake_slack, rid)


def test_followup_and_waiting_say_what_they_mean():
    from blocks.request_card import STATUS_LABELS
    from triage.core.labels import LABEL_SPECS

    assert STATUS_LABELS["followup"] == "Follow-up work required by the SA"
    assert "requestor" in STATUS_LABELS["waiting"]
    specs = {s.name: s.description for s in LABEL_SPECS}
    assert "required by the SA" in specs["SA Followup"] and "waiting on the requestor" in specs["SA Waiting"]


# ---------------------------------------------------------------- the same SA for the opportunity


def test_follow_up_on_an_opportunity_an_sa_worked_goes_to_that_sa_first(services, fake_slack, fake_gitlab,
                                                                         settings):
    first = submit_direct(services, now=FRI_NY, key="V-first")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    services.claim(first, SA1, now=FRI_NY + H)
    services.set_status(first, SA1, "done", now=FRI_NY + 2 * H)
    run_once(settings, FRI_NY + 2 * H)
    fake_slack.clear_calls()

    later = FRI_NY + 3 * H
    follow = submit_direct(services, now=later, key="V-follow", request_type="follow_up",
                           parent_request=f"SAR-{first}", why_now=None, pain=None, champion=None,
                           command_plan_url=None, hosting=None)
    run_once(settings, later + timedelta(minutes=1))
    posts = [c.args.get("channel") for c in fake_slack.calls_to("chat.postMessage")]
    assert posts[0] == SA1, posts  # the SA is told first, before the card is in the channel
    assert f"SAR-{first}" in dms_to(fake_slack, SA1)[-1]
    assert f"<@{SA1}> already worked this opportunity" in card_text(fake_slack, follow)
    assert any(f"<@{SA1}> worked this opportunity on SAR-{first}" in t for t in thread_texts(fake_slack, follow))
    assert "Same SA for the opportunity" in fake_gitlab.issue(PROJECT, 2)["description"]


def test_duplicate_check_looks_across_queues(services, settings):
    first = submit_direct(services, now=FRI_NY, key="V-dup")
    details = RequestFields.model_validate({**GOOD, "opportunity": OPP, "queue": "emea"})
    [dup] = services.submit_many([Submission("V-emea", AE, details)], now=FRI_NY)
    assert isinstance(dup, Duplicate) and dup.request_id == first and dup.queue == "AMER East"


# ---------------------------------------------------------------- the opportunity is a link


def test_opportunity_is_a_salesforce_link_on_card_and_issue(services, fake_slack, fake_gitlab, settings):
    rid = submit_direct(services, now=FRI_NY, key="V-sf")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    url = f"{SF}/lightning/r/Opportunity/{OPP}/view"
    assert f"<{url}|{OPP}>" in card_text(fake_slack, rid)
    assert f"]({url})" in fake_gitlab.issues(PROJECT)[0]["description"]


def test_event_due_dates_are_days_in_the_queue_zone(settings):
    policy = settings.config.policy("amer-east")
    assert policy.event_cutoff(date(2026, 12, 10)) == datetime(2026, 12, 9, 0, 0, tzinfo=NY).astimezone(UTC)


# ---------------------------------------------------------------- each delivery step talks to one service


def test_filing_and_assigning_on_gitlab_make_no_slack_call(services, fake_slack, fake_gitlab, settings):
    """The AE's name comes with the submission; the SA's email is looked up by a Slack step queued before
    the GitLab update, so a Slack outage delays the assignment instead of filing it without one."""
    rid = submit_direct(services, now=FRI_NY, key="V-one-service")
    run_once(settings, FRI_NY + timedelta(minutes=1))
    assert request_row(settings, rid).gitlab_iid == 1  # filed without asking Slack who the AE is
    assert not fake_slack.calls_to("users.info")

    fake_slack.fail("users.info", status=500)
    services.claim(rid, SA1, now=FRI_NY + H)
    run_once(settings, FRI_NY + H)
    assert fake_gitlab.issue(PROJECT, 1)["assignees"] == []  # waits on Slack's users.info...
    assert not [c for c in fake_slack.calls_to("chat.postEphemeral") if "GitLab username" in json.dumps(c.args)]
    run_once(settings, FRI_NY + 2 * H)
    assert [a["username"] for a in fake_gitlab.issue(PROJECT, 1)["assignees"]] == ["sam"]  # ...then lands
