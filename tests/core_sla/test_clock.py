"""Pauses, clock history, deadlines, reminders and elapsed time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from freezegun import freeze_time

from triage.core.sla import (
    Calendar,
    Pause,
    SlaClock,
    SlaClockEvent,
    deadline,
    elapsed,
    fraction_elapsed,
    humanize_left,
    parse_duration,
    pauses_from_events,
    remaining,
    threshold_times,
)

H = timedelta(hours=1)
NY = ZoneInfo("America/New_York")
WEEKDAYS = Calendar("weekdays", NY, "US")
HOURS = Calendar("business_hours", NY, "US")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


# 2026-06-05 is a Friday; 2026-06-08 a Monday.
FRI_9 = ny(2026, 6, 5, 9)
MON_9 = ny(2026, 6, 8, 9)


# ------------------------------------------------------------------ pauses move the deadline


def test_pause_over_the_weekend_moves_a_weekdays_deadline_by_nothing() -> None:
    plain = deadline(FRI_9, 24 * H, WEEKDAYS)
    assert plain == MON_9
    weekend = [Pause(ny(2026, 6, 6), ny(2026, 6, 8))]
    assert deadline(FRI_9, 24 * H, WEEKDAYS, weekend) == plain


@pytest.mark.parametrize(
    ("pause", "moved"),
    [
        (Pause(ny(2026, 6, 5, 18), ny(2026, 6, 8)), 6 * H),  # Friday evening only
        (Pause(ny(2026, 6, 5, 18), ny(2026, 6, 8, 2)), 8 * H),
        (Pause(ny(2026, 6, 5, 10), ny(2026, 6, 5, 10, 30)), timedelta(minutes=30)),
        (Pause(ny(2026, 6, 4), ny(2026, 6, 5, 10)), H),  # began before the clock started
        (Pause(ny(2026, 6, 8, 10), ny(2026, 6, 8, 11)), timedelta(0)),  # after the deadline
    ],
)
def test_pause_moves_deadline_by_exactly_the_paused_working_time(pause: Pause, moved: timedelta) -> None:
    plain = deadline(FRI_9, 24 * H, WEEKDAYS)
    paused = deadline(FRI_9, 24 * H, WEEKDAYS, [pause])
    assert WEEKDAYS.between(plain, paused) == moved
    assert paused == WEEKDAYS.add(plain, moved)


def test_pause_on_business_hours() -> None:
    target = parse_duration("24h")  # three business days
    plain = deadline(MON_9, target, HOURS)
    assert plain == ny(2026, 6, 10, 17)
    paused = deadline(MON_9, target, HOURS, [Pause(ny(2026, 6, 8, 12), ny(2026, 6, 9, 12))])
    assert paused == ny(2026, 6, 11, 17)  # Mon 12-17 and Tue 9-12: 8 business hours


def test_overlapping_pauses_count_once() -> None:
    pauses = [Pause(ny(2026, 6, 8, 10), ny(2026, 6, 8, 12)), Pause(ny(2026, 6, 8, 11), ny(2026, 6, 8, 13))]
    assert deadline(MON_9, 8 * H, HOURS, pauses) == ny(2026, 6, 9, 12)


def test_pause_ending_after_the_plain_deadline() -> None:
    # 1h of target left when the pause starts at 16:00; it ends Tuesday 12:00.
    pauses = [Pause(ny(2026, 6, 8, 16), ny(2026, 6, 9, 12))]
    assert deadline(MON_9, 8 * H, HOURS, pauses) == ny(2026, 6, 9, 13)


def test_deadline_reached_exactly_when_a_pause_begins() -> None:
    pauses = [Pause(ny(2026, 6, 8, 17), ny(2026, 6, 9, 12))]
    assert deadline(MON_9, 8 * H, HOURS, pauses) == ny(2026, 6, 8, 17)


def test_zero_target_is_due_at_start() -> None:
    assert deadline(MON_9, timedelta(0), HOURS, [Pause(MON_9, ny(2026, 6, 9))]) == MON_9


# ------------------------------------------------------------------ open pauses


def test_open_pause_ends_at_now() -> None:
    target = parse_duration("24h")
    open_pause = [Pause(ny(2026, 6, 8, 12), None)]
    assert deadline(MON_9, target, HOURS, open_pause, now=ny(2026, 6, 9, 12)) == ny(2026, 6, 11, 17)
    assert deadline(MON_9, target, HOURS, open_pause, now=ny(2026, 6, 9, 14)) == ny(2026, 6, 12, 11)
    closed = [Pause(ny(2026, 6, 8, 12), ny(2026, 6, 9, 14))]
    assert deadline(MON_9, target, HOURS, closed) == ny(2026, 6, 12, 11)


def test_open_pause_never_lets_the_deadline_pass() -> None:
    open_pause = [Pause(ny(2026, 6, 8, 12), None)]
    for days in range(0, 30):
        now = ny(2026, 6, 8, 12) + timedelta(days=days, hours=3)
        assert deadline(MON_9, 8 * H, HOURS, open_pause, now=now) > now


def test_open_pause_needs_now() -> None:
    with pytest.raises(ValueError, match="open pause needs `now`"):
        deadline(MON_9, 8 * H, HOURS, [Pause(ny(2026, 6, 8, 12), None)])


def test_open_pause_beginning_after_now_is_ignored() -> None:
    pauses = [Pause(ny(2026, 6, 8, 12), None)]
    assert deadline(MON_9, 8 * H, HOURS, pauses, now=ny(2026, 6, 8, 11)) == ny(2026, 6, 8, 17)


# ------------------------------------------------------------------ history


def ev(kind: str, *args: int) -> SlaClockEvent:
    return SlaClockEvent(ny(*args), kind)  # type: ignore[arg-type]


HISTORY = [
    ev("start", 2026, 6, 8, 9),
    ev("pause", 2026, 6, 8, 12),
    ev("resume", 2026, 6, 9, 12),
    ev("stop", 2026, 6, 10, 10),
]


def test_clock_from_events() -> None:
    clock = SlaClock.from_events(HISTORY)
    assert clock == SlaClock(MON_9, (Pause(ny(2026, 6, 8, 12), ny(2026, 6, 9, 12)),), ny(2026, 6, 10, 10))
    assert pauses_from_events(reversed(HISTORY)) == list(clock.pauses)


def test_elapsed_from_history() -> None:
    later = ny(2026, 6, 11, 12)
    # Mon 9-12 (3h) + Tue 12-17 (5h) + Wed 9-10 (1h); the stop freezes it.
    assert elapsed(HISTORY, later, HOURS) == 9 * H
    clock = SlaClock.from_events(HISTORY)
    assert elapsed(clock, later, HOURS) == 9 * H
    assert elapsed((clock.start, clock.pauses, clock.stop), later, HOURS) == 9 * H
    assert elapsed(HISTORY, ny(2026, 6, 9, 13), HOURS) == 4 * H
    assert elapsed(HISTORY, ny(2026, 6, 8, 15), HOURS) == 3 * H  # paused since noon
    assert elapsed(HISTORY, ny(2026, 6, 7), HOURS) == timedelta(0)  # before the start


def test_replayed_and_stray_events_are_harmless() -> None:
    events = [
        ev("pause", 2026, 6, 8, 8),  # before the start: ignored
        ev("start", 2026, 6, 8, 9),
        ev("start", 2026, 6, 8, 9, 30),  # a second start while running: ignored
        ev("resume", 2026, 6, 8, 10),  # not paused: ignored
        ev("pause", 2026, 6, 8, 12),
        ev("pause", 2026, 6, 8, 13),  # already paused: ignored
        ev("resume", 2026, 6, 8, 14),
        ev("resume", 2026, 6, 8, 15),
    ]
    clock = SlaClock.from_events(events)
    assert clock == SlaClock(MON_9, (Pause(ny(2026, 6, 8, 12), ny(2026, 6, 8, 14)),), None)


def test_stop_while_paused_and_restart_after_stop() -> None:
    events = [
        ev("start", 2026, 6, 8, 9),
        ev("pause", 2026, 6, 8, 10),
        ev("stop", 2026, 6, 8, 11),  # allocated while waiting on the AE
        ev("start", 2026, 6, 8, 13),  # unclaimed: the clock runs again
        ev("pause", 2026, 6, 8, 15),
    ]
    clock = SlaClock.from_events(events)
    assert clock.stop is None
    assert clock.pauses == (
        Pause(ny(2026, 6, 8, 10), ny(2026, 6, 8, 11)),
        Pause(ny(2026, 6, 8, 11), ny(2026, 6, 8, 13)),
        Pause(ny(2026, 6, 8, 15), None),
    )
    assert elapsed(events, ny(2026, 6, 9, 12), HOURS) == 3 * H  # 9-10 and 13-15


def test_history_needs_a_start() -> None:
    with pytest.raises(ValueError, match="no start event"):
        SlaClock.from_events([ev("pause", 2026, 6, 8, 9)])
    with pytest.raises(ValueError, match="unknown SLA clock event"):
        SlaClock.from_events([ev("start", 2026, 6, 8, 9), ev("explode", 2026, 6, 8, 10)])


def test_deadline_from_history_matches_elapsed() -> None:
    clock = SlaClock.from_events(HISTORY[:3])
    due = deadline(clock.start, parse_duration("24h"), HOURS, clock.pauses)
    assert due == ny(2026, 6, 11, 17)
    assert elapsed(clock, due, HOURS) == 24 * H


# ------------------------------------------------------------------ reminders and helpers


def test_threshold_times() -> None:
    times = threshold_times(MON_9, parse_duration("24h"), HOURS, [0.75, 0.5, 0.5])
    assert times == [(0.5, ny(2026, 6, 9, 13)), (0.75, ny(2026, 6, 10, 11)), (1.0, ny(2026, 6, 10, 17))]
    paused = threshold_times(MON_9, 24 * H, HOURS, [0.5], [Pause(ny(2026, 6, 9, 9), ny(2026, 6, 10, 9))])
    assert paused == [(0.5, ny(2026, 6, 10, 13)), (1.0, ny(2026, 6, 11, 17))]
    with pytest.raises(ValueError, match="between 0 and 1"):
        threshold_times(MON_9, 24 * H, HOURS, [1.5])
    with pytest.raises(ValueError, match="between 0 and 1"):
        threshold_times(MON_9, 24 * H, HOURS, [0])


def test_remaining_and_fraction() -> None:
    pauses = [Pause(ny(2026, 6, 8, 12), ny(2026, 6, 9, 12))]
    now = ny(2026, 6, 9, 13)
    assert remaining(MON_9, parse_duration("24h"), HOURS, now=now, pauses=pauses) == 20 * H
    used = fraction_elapsed(MON_9, parse_duration("24h"), HOURS, now=now, pauses=pauses)
    assert used == pytest.approx(1 / 6)
    late = ny(2026, 6, 12, 12)
    assert remaining(MON_9, 8 * H, HOURS, now=late) == -27 * H  # 35h used of 8h
    assert fraction_elapsed(MON_9, 8 * H, HOURS, now=late) == 35 / 8
    stopped = fraction_elapsed(MON_9, 8 * H, HOURS, now=late, stop=ny(2026, 6, 8, 13))
    assert stopped == 0.5
    assert fraction_elapsed(MON_9, timedelta(0), HOURS, now=late) == 1.0


def test_days_target_on_business_hours() -> None:
    assert deadline(MON_9, parse_duration("5d"), HOURS) == ny(2026, 6, 12, 17)
    assert deadline(MON_9, parse_duration("5d"), WEEKDAYS) == ny(2026, 6, 15, 9)


def test_nothing_reads_the_system_clock() -> None:
    pauses = [Pause(ny(2026, 6, 8, 12), None)]
    now = ny(2026, 6, 9, 12)
    expected = deadline(MON_9, 24 * H, HOURS, pauses, now=now)
    with freeze_time("2031-02-03 04:05:06"):
        assert deadline(MON_9, 24 * H, HOURS, pauses, now=now) == expected
        assert elapsed(HISTORY, ny(2026, 6, 11, 12), HOURS) == 9 * H


@freeze_time("2026-06-09 17:00:00")  # 13:00 in New York
def test_humanize_with_the_frozen_now() -> None:
    now = datetime.now(UTC)
    due = deadline(MON_9, 24 * H, HOURS)
    assert humanize_left(due, now) == "due in 1d 4h"  # wall-clock time until Wednesday 17:00
    left = remaining(MON_9, 24 * H, HOURS, now=now)
    assert left == 12 * H  # working time
    assert humanize_left(deadline(MON_9, 2 * H, HOURS), now) == "1d 2h late"
