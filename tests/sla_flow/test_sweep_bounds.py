"""The sweep reads only due rows, in bounded batches, and says when it stopped with work left."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.sla_flow.conftest import request_row, submit_direct
from triage.migrate import upgrade
from triage.services.sla_sweep import schedule, sweep


def test_batches_are_bounded_and_the_rest_is_left_for_the_next_pass(settings, services_of):
    upgrade(settings.database_url)
    services = services_of(settings)
    t0 = datetime(2030, 3, 1, 12, tzinfo=UTC)
    ids = [submit_direct(services, now=t0 + timedelta(minutes=i), key=f"VBOUND{i:04d}") for i in range(5)]
    late = submit_direct(services, now=t0 + timedelta(hours=5), key="VBOUNDLATE")

    first = sweep(services.engine, services.config, now=t0 + 13 * timedelta(hours=1), limit=2, max_batches=1)
    assert (first.checked, first.reminders, first.more) == (2, 2, True)
    rest = sweep(services.engine, services.config, now=t0 + 13 * timedelta(hours=1), limit=2)
    assert (rest.checked, rest.reminders, rest.more, rest.batches) == (3, 3, False, 2)
    again = sweep(services.engine, services.config, now=t0 + 13 * timedelta(hours=1), limit=2)
    assert again.checked == 0  # everything handled now waits for 75%
    assert request_row(settings, ids[0]).next_check_at == t0 + timedelta(hours=18)
    assert request_row(settings, late).next_check_at == t0 + timedelta(hours=17)  # not due: never read


def test_schedule_of_a_new_request_is_its_first_reminder(settings, services_of):
    upgrade(settings.database_url)
    services = services_of(settings)
    t0 = datetime(2030, 3, 1, 12, tzinfo=UTC)
    rid = submit_direct(services, now=t0, key="VSCHED0001")
    row = request_row(settings, rid)
    assert schedule(row, services.config, t0) == t0 + timedelta(hours=12)
    row.allocated_at = t0 + timedelta(hours=1)
    assert schedule(row, services.config, t0) is None
