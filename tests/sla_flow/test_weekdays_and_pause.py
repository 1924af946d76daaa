"""The sweep on a weekdays clock: weekends don't count, and a needs-info pause moves every threshold
and the deadline by exactly the paused working time (queue amer-east: America/New_York, US holidays)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import AE, SA1
from tests.sla_flow.conftest import (
    PROJECT,
    leaders_posts,
    request_row,
    settings_for,
    sla_replies,
    submit_direct,
)
from triage.migrate import upgrade
from triage.worker import run_once

NY = ZoneInfo("America/New_York")
MIN = timedelta(minutes=1)


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)


@pytest.fixture
def wd_settings(sqlite_url: str, weekdays_config: Path, fake_slack, fake_gitlab):
    settings = settings_for(sqlite_url, weekdays_config, fake_slack, fake_gitlab)
    upgrade(sqlite_url)
    return settings


def test_weekend_does_not_count(wd_settings, fake_slack, fake_gitlab, services_of):
    # Friday 1 Feb 2030, 10:00: 14 working hours left that day, then Monday. 24h target:
    # 50% Fri 22:00, 75% Mon 04:00, breach Mon 10:00.
    t0 = ny(2030, 2, 1, 10)
    rid = submit_direct(services_of(wd_settings), now=t0, key="VWEEKDAYS1")
    assert request_row(wd_settings, rid).next_check_at == ny(2030, 2, 1, 22)
    run_once(wd_settings, t0 + MIN)
    assert fake_gitlab.issues(PROJECT)[0]["due_date"] == "2030-02-04"

    run_once(wd_settings, ny(2030, 2, 1, 21, 59))
    assert sla_replies(fake_slack, rid) == []
    run_once(wd_settings, ny(2030, 2, 1, 22, 1))
    assert len(sla_replies(fake_slack, rid)) == 1 and "50%" in sla_replies(fake_slack, rid)[0]

    for when in (ny(2030, 2, 2, 12), ny(2030, 2, 3, 23, 59), ny(2030, 2, 4, 3, 59)):  # the weekend, Monday early
        run_once(wd_settings, when)
    assert len(sla_replies(fake_slack, rid)) == 1
    run_once(wd_settings, ny(2030, 2, 4, 4, 1))
    assert len(sla_replies(fake_slack, rid)) == 2 and "75%" in sla_replies(fake_slack, rid)[1]

    run_once(wd_settings, ny(2030, 2, 4, 9, 59))
    assert leaders_posts(fake_slack) == []
    run_once(wd_settings, ny(2030, 2, 4, 10, 1))
    assert len(sla_replies(fake_slack, rid)) == 3 and "missed its 24h SLA" in sla_replies(fake_slack, rid)[2]
    assert len(leaders_posts(fake_slack)) == 1
    assert "due Mon 04 Feb 10:00 EST" in leaders_posts(fake_slack)[0]


def test_needs_info_pause_moves_deadline_and_thresholds_by_the_paused_working_time(
        wd_settings, fake_slack, fake_gitlab, services_of):
    services = services_of(wd_settings)
    t0 = ny(2030, 1, 31, 10)  # Thursday; unpaused the deadline would be Friday 10:00
    rid = submit_direct(services, now=t0, key="VPAUSE0001")
    run_once(wd_settings, t0 + MIN)
    old_deadline = request_row(wd_settings, rid).deadline
    assert old_deadline == ny(2030, 2, 1, 10)

    paused_at, resumed_at = ny(2030, 1, 31, 16), ny(2030, 2, 4, 9)  # 6h used; back on Monday 09:00
    services.needs_info(rid, SA1, "Which cloud does the customer run on?", now=paused_at)
    # While paused: not the old 50% (Thu 22:00), not the old deadline, not over the weekend.
    for when in (ny(2030, 1, 31, 22, 1), ny(2030, 2, 1, 10, 1), ny(2030, 2, 2, 12), ny(2030, 2, 4, 8, 59)):
        run_once(wd_settings, when)
    assert sla_replies(fake_slack, rid) == [] and leaders_posts(fake_slack) == []
    assert request_row(wd_settings, rid).next_check_at is None  # the resume reschedules

    services.answer(rid, AE, "AWS, us-east-1, with a few workloads on GCP.", now=resumed_at)
    row = request_row(wd_settings, rid)
    cal = services.config.policy("amer-east").calendar
    paused_work = cal.between(paused_at, resumed_at)
    assert paused_work == timedelta(hours=8 + 24 + 9)  # Thu 16-24, all of Friday, Mon 00-09; no weekend
    assert row.deadline == cal.add(old_deadline, paused_work) == ny(2030, 2, 5, 3)
    # 18h were left at the resume: 50% (12h used) after 6 more hours, 75% after 12, breach after 18.
    assert row.next_check_at == ny(2030, 2, 4, 15)

    run_once(wd_settings, resumed_at + MIN)
    assert fake_gitlab.issues(PROJECT)[0]["due_date"] == "2030-02-05"
    run_once(wd_settings, ny(2030, 2, 4, 14, 59))
    assert sla_replies(fake_slack, rid) == []
    run_once(wd_settings, ny(2030, 2, 4, 15, 1))
    assert len(sla_replies(fake_slack, rid)) == 1 and "50%" in sla_replies(fake_slack, rid)[0]
    run_once(wd_settings, ny(2030, 2, 4, 21, 1))
    assert len(sla_replies(fake_slack, rid)) == 2 and "75%" in sla_replies(fake_slack, rid)[1]
    run_once(wd_settings, ny(2030, 2, 5, 3, 1))
    assert len(sla_replies(fake_slack, rid)) == 3 and len(leaders_posts(fake_slack)) == 1
