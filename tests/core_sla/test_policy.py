"""The per-queue SLA policy: engagement models, overrides, Expedite only shortening, event lead time,
breach, next check and the clock in words. Pure: no database, no servers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time
from hypothesis import given, settings
from hypothesis import strategies as st

from triage.config import DEFAULT_TARGETS, parse_config
from triage.core.errors import ConfigError
from triage.core.sla import Pause, SlaClock, Target
from triage.core.sla_policy import SlaPolicy

from .reference import MINUTE, Reference

NY = ZoneInfo("America/New_York")
H = timedelta(hours=1)


def policy(*, engagement: str = "triage_board", clock: str = "weekdays", overrides=None, lead: str = "1d",
           targets=None) -> SlaPolicy:
    return SlaPolicy.build(clock=clock, business_hours="09:00-17:00", timezone="America/New_York", country="US",
                           subdiv=None, targets=targets or DEFAULT_TARGETS, engagement=engagement,
                           overrides=overrides, event_lead=lead)


# ---------------------------------------------------------------- which target applies


def test_triage_board_activity_is_48h_for_every_type_but_events():
    p = policy()
    assert {t: str(p.target(t, False)) for t in ("opportunity", "follow_up", "security_assessment", "event")} == {
        "opportunity": "48h", "follow_up": "48h", "security_assessment": "48h", "event": "5d"}


def test_enterprise_allocates_an_opportunity_in_24h_and_leaves_the_rest():
    p = policy(engagement="enterprise")
    assert str(p.target("opportunity", False)) == "24h"
    assert str(p.target("follow_up", False)) == "48h"


def test_a_queue_override_wins_over_the_engagement_default():
    assert str(policy(engagement="enterprise", overrides={"opportunity": "12h"}).target("opportunity", False)) == "12h"


@pytest.mark.parametrize("engagement", ["triage_board", "enterprise"])
@pytest.mark.parametrize("request_type", ["opportunity", "follow_up", "security_assessment", "event"])
def test_expedite_gives_24h_or_the_shorter_own_target(engagement, request_type):
    p = policy(engagement=engagement, overrides={"follow_up": "8h"})
    own, fast = p.amount(request_type, False), p.amount(request_type, True)
    assert fast == min(own, 24 * H)


@settings(max_examples=200, deadline=None)
@given(own=st.integers(1, 20 * 24 * 60), fast=st.integers(1, 20 * 24 * 60),
       kind=st.sampled_from(["calendar", "weekdays", "business_hours"]))
def test_expedite_never_lengthens(own, fast, kind):
    p = policy(clock=kind, overrides={"opportunity": f"{own}m", "expedite": f"{fast}m"})
    assert p.amount("opportunity", True) <= p.amount("opportunity", False)


def test_unknown_engagement_is_refused():
    with pytest.raises(ValueError, match="unknown engagement"):
        policy(engagement="pooled")


# ---------------------------------------------------------------- deadlines against the reference


@settings(max_examples=60, deadline=None)
@given(start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1)).map(
    lambda d: d.replace(second=0, microsecond=0, tzinfo=UTC)),
    request_type=st.sampled_from(["opportunity", "follow_up"]), expedite=st.booleans(),
    engagement=st.sampled_from(["triage_board", "enterprise"]))
def test_deadline_matches_the_minute_by_minute_reference(start, request_type, expedite, engagement):
    p = policy(engagement=engagement)
    ref = Reference("weekdays", NY, "US")
    assert p.deadline(request_type, expedite, start) == ref.add(start, p.amount(request_type, expedite) // MINUTE)


def test_a_pause_moves_the_deadline_by_the_paused_working_time():
    p = policy(clock="calendar")
    start = datetime(2026, 12, 1, 12, tzinfo=UTC)
    clock = SlaClock(start, (Pause(start + H, start + 4 * H),))
    assert p.deadline("opportunity", False, clock) == start + 51 * H


# ---------------------------------------------------------------- events


@settings(max_examples=150, deadline=None)
@given(start=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 1)).map(
    lambda d: d.replace(tzinfo=UTC)), days_ahead=st.integers(0, 30), expedite=st.booleans(),
    lead=st.sampled_from(["1d", "12h", "2d"]))
def test_an_events_deadline_never_falls_after_its_cutoff_nor_before_the_start(start, days_ahead, expedite, lead):
    p = policy(lead=lead)
    event_day = start.astimezone(NY).date() + timedelta(days=days_ahead)
    due = p.deadline("event", expedite, start, event_date=event_day)
    assert start <= due <= max(start, p.event_cutoff(event_day))
    assert due <= p.deadline("event", expedite, start)  # the lead time only ever brings it forward
    assert p.short_notice("event", event_day, start) == (p.event_cutoff(event_day) < p.deadline("event", False,
                                                                                               start))


def test_event_cutoff_is_the_lead_time_before_the_event_day_in_the_queue_zone():
    assert policy(lead="1d").event_cutoff(date(2026, 12, 12)) == datetime(2026, 12, 11, tzinfo=NY).astimezone(UTC)
    assert policy(lead="12h").event_cutoff(date(2026, 12, 12)) == datetime(2026, 12, 11, 12, tzinfo=NY).astimezone(
        UTC)


def test_monday_for_saturday_is_due_friday_not_next_tuesday():
    """The issue's example: filed on a Monday for an event that Saturday."""
    p = policy()
    monday = datetime(2026, 11, 30, 15, tzinfo=UTC)  # 10:00 New York
    due = p.deadline("event", False, monday, event_date=date(2026, 12, 5))
    assert due == datetime(2026, 12, 4, tzinfo=NY).astimezone(UTC)  # Friday 00:00, a day before
    assert p.short_notice("event", date(2026, 12, 5), monday)


def test_event_reminders_keep_their_fractions_of_the_shorter_time():
    p = policy(clock="calendar")
    start = datetime(2026, 12, 1, 0, tzinfo=NY).astimezone(UTC)
    view = p.view("event", False, SlaClock(start), event_date=date(2026, 12, 3), now=start)
    assert view.cut_by_event and view.deadline == start + 24 * H
    assert [(f, w - start) for f, w in view.thresholds] == [(0.5, 12 * H), (0.75, 18 * H), (1.0, 24 * H)]


def test_no_event_date_means_the_plain_target():
    p = policy()
    start = datetime(2026, 12, 1, 15, tzinfo=UTC)
    assert p.deadline("event", False, start) == p.deadline("event", False, start, event_date=None)
    assert not p.short_notice("opportunity", date(2026, 12, 2), start)


# ---------------------------------------------------------------- breach and next check


@freeze_time("2026-12-03 12:00:00")
def test_breached_is_allocation_or_now_after_the_deadline():
    now = datetime.now(UTC)
    assert SlaPolicy.breached(now - H, None, now)
    assert not SlaPolicy.breached(now + H, None, now)
    assert SlaPolicy.breached(now - 2 * H, now - H, now)
    assert not SlaPolicy.breached(now - H, now - 2 * H, now)


def test_next_check_skips_handled_thresholds_and_stops_when_paused():
    p = policy(clock="calendar")
    start = datetime(2026, 12, 1, tzinfo=UTC)
    view = p.view("opportunity", False, SlaClock(start), now=start)
    assert SlaPolicy.next_check(view, ()) == start + 24 * H
    assert SlaPolicy.next_check(view, (0.5,)) == start + 36 * H
    assert SlaPolicy.next_check(view, (0.5, 0.75, 1.0)) is None
    paused = p.view("opportunity", False, SlaClock(start, (Pause(start + H, None),)), now=start + 2 * H)
    assert paused.paused and SlaPolicy.next_check(paused, ()) is None


# ---------------------------------------------------------------- in words


@pytest.mark.parametrize(("clock", "target", "words"), [
    ("weekdays", Target(0, 24 * 60), "24 working hours"),
    ("weekdays", Target(5, 0), "5 working days"),
    ("business_hours", Target(1, 240), "1 business day 4 hours"),
    ("calendar", Target(0, 90), "1 hour 30 minutes"),
])
def test_targets_in_words(clock, target, words):
    assert policy(clock=clock).target_words(target) == words


def test_the_clock_in_words_from_friday_to_monday():
    p = policy(engagement="enterprise")
    friday = datetime(2026, 12, 4, 21, tzinfo=UTC)  # 16:00 New York
    due = p.deadline("opportunity", False, friday)
    assert p.describe("opportunity", False, friday, due) == "24 working hours: Friday 16:00 → Monday 16:00 EST"


# ---------------------------------------------------------------- config


def _queue(**extra):
    return {"key": "q", "name": "Q", "gitlab_project": "g/q", "slack_channel": "C0QQQ", **extra}


def test_config_builds_one_policy_per_queue_once():
    config = parse_config({"queues": [_queue(engagement="enterprise"), _queue(key="r", slack_channel="C0RRR")]})
    assert config.policy("q") is config.policy("q")
    assert str(config.policy("q").target("opportunity", False)) == "24h"
    assert str(config.policy("r").target("opportunity", False)) == "48h"
    assert config.policy("missing") is None


@pytest.mark.parametrize(("data", "fragment"), [
    ({"queues": [_queue(engagement="pooled")]}, "queues[0] (q).engagement"),
    ({"sla": {"event_lead": "soon"}}, "sla.event_lead"),
    ({"salesforce": {"url": "http://x.example.com"}}, "salesforce.url"),
    ({"salesforce": {"url": "https://x.example.com", "token": "t"}}, "salesforce.token"),
])
def test_bad_sla_config_names_the_key(data, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(")
                       .replace(")", r"\)")):
        parse_config(data)


def test_salesforce_opportunity_link():
    config = parse_config({"salesforce": {"url": "https://acme.lightning.force.com/"}})
    assert config.salesforce.opportunity_url("0065g00000AbCdEAAV") == \
        "https://acme.lightning.force.com/lightning/r/Opportunity/0065g00000AbCdEAAV/view"
    assert parse_config({}).salesforce.opportunity_url("0065g00000AbCdEAAV") is None


def test_the_shipped_example_config_has_both_engagement_models():
    from pathlib import Path

    from triage.config import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "triage.example.toml")
    assert {q.engagement for q in config.queues} == {"triage_board", "enterprise"}
    enterprise = next(q for q in config.queues if q.engagement == "enterprise")
    board = next(q for q in config.queues if q.engagement == "triage_board")
    assert str(config.policy(enterprise.key).target("opportunity", False)) == "24h"
    assert str(config.policy(board.key).target("opportunity", False)) == "48h"
    assert config.salesforce.url == "https://yourorg.lightning.force.com"
