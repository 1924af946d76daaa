"""Calendars: weekends, holidays, business hours and DST, on fixed dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from triage.core.sla import Calendar, Target, clear_caches, parse_business_hours

from .reference import Reference

H = timedelta(hours=1)
M = timedelta(minutes=1)
NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
SYDNEY = ZoneInfo("Australia/Sydney")


def at(tz: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=tz)  # type: ignore[misc]


# ------------------------------------------------------------------ weekends and holidays


def test_weekdays_skip_the_weekend() -> None:
    cal = Calendar("weekdays", NY)
    assert cal.add(at(NY, 2026, 6, 5, 12), 24 * H) == at(NY, 2026, 6, 8, 12)  # Fri -> Mon
    assert cal.add(at(NY, 2026, 6, 6, 12), 24 * H) == at(NY, 2026, 6, 9, 0)  # Sat: starts Monday
    assert cal.between(at(NY, 2026, 6, 5, 12), at(NY, 2026, 6, 8, 12)) == 24 * H
    assert cal.add(at(NY, 2026, 6, 5, 12), 12 * H) == at(NY, 2026, 6, 6, 0)  # first instant: Fri 24:00


def test_results_are_utc() -> None:
    result = Calendar("weekdays", NY).add(at(NY, 2026, 6, 5, 12), 24 * H)
    assert result.tzinfo is UTC
    assert result == datetime(2026, 6, 8, 16, tzinfo=UTC)


def test_us_thanksgiving() -> None:
    cal = Calendar("weekdays", NY, "US")
    assert not cal.is_working_day(date(2026, 11, 26))
    assert cal.is_working_day(date(2026, 11, 27))  # the Friday after is not a federal holiday
    assert cal.add(at(NY, 2026, 11, 25, 10), 24 * H) == at(NY, 2026, 11, 27, 10)
    hours = Calendar("business_hours", NY, "US")
    assert hours.add(at(NY, 2026, 11, 25, 16), 2 * H) == at(NY, 2026, 11, 27, 10)


def test_us_independence_day_observed_on_friday() -> None:
    cal = Calendar("weekdays", NY, "US")
    assert not cal.is_working_day(date(2026, 7, 3))  # July 4th 2026 is a Saturday
    assert cal.add(at(NY, 2026, 7, 2, 10), 24 * H) == at(NY, 2026, 7, 6, 10)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        ((2025, 12, 31, 10), (2026, 1, 2, 10)),  # Wed -> Fri, over New Year's Day
        ((2026, 12, 31, 10), (2027, 1, 4, 10)),  # Thu -> Mon: Jan 1 2027 is a Friday
    ],
)
def test_new_year_across_the_year_end(start: tuple[int, ...], expected: tuple[int, ...]) -> None:
    cal = Calendar("weekdays", NY, "US")
    assert cal.add(at(NY, *start), 24 * H) == at(NY, *expected)
    assert cal.between(at(NY, *start), at(NY, *expected)) == 24 * H


def test_observed_new_year_in_the_previous_year() -> None:
    # Jan 1 2022 was a Saturday; the holiday is observed on Friday Dec 31 2021.
    assert not Calendar("weekdays", NY, "US").is_working_day(date(2021, 12, 31))


def test_uk_christmas_and_boxing_day_observed() -> None:
    cal = Calendar("weekdays", LONDON, "GB")
    assert cal.add(at(LONDON, 2026, 12, 24, 10), 24 * H) == at(LONDON, 2026, 12, 29, 10)
    assert Calendar("weekdays", LONDON, "UK") == Calendar("weekdays", LONDON, "UK")


def test_uk_easter_depends_on_the_subdivision() -> None:
    start = at(LONDON, 2026, 4, 2, 10)  # Thursday before Good Friday
    assert Calendar("weekdays", LONDON, "GB").add(start, 24 * H) == at(LONDON, 2026, 4, 6, 10)
    england = Calendar("weekdays", LONDON, "GB", subdiv="ENG")
    assert england.add(start, 24 * H) == at(LONDON, 2026, 4, 7, 10)  # Easter Monday too


def test_uk_bank_holiday_business_hours() -> None:
    cal = Calendar("business_hours", LONDON, "GB")
    assert cal.add(at(LONDON, 2026, 5, 1, 16), 2 * H) == at(LONDON, 2026, 5, 5, 10)  # May Day Monday


def test_australian_easter_with_dst_ending() -> None:
    # Good Friday Apr 3 and Easter Monday Apr 6 2026; DST ends on Sunday Apr 5 in Sydney.
    cal = Calendar("weekdays", SYDNEY, "AU")
    start = at(SYDNEY, 2026, 4, 2, 12)
    end = cal.add(start, 24 * H)
    assert end == at(SYDNEY, 2026, 4, 7, 12)
    assert end - start == timedelta(days=5, hours=1)


def test_calendar_clock_counts_everything() -> None:
    cal = Calendar("calendar", NY, "US")
    assert cal.is_working_day(date(2026, 11, 26))
    assert cal.add(at(NY, 2026, 11, 26, 10), 24 * H) == at(NY, 2026, 11, 27, 10)
    assert list(cal.working_intervals(at(NY, 2026, 1, 1), at(NY, 2026, 1, 2))) == [
        (datetime(2026, 1, 1, 5, tzinfo=UTC), datetime(2026, 1, 2, 5, tzinfo=UTC))
    ]


# ------------------------------------------------------------------ business hours


def test_business_hours_span_nights_and_weekends() -> None:
    cal = Calendar("business_hours", NY)
    assert cal.add(at(NY, 2026, 6, 2, 20), H) == at(NY, 2026, 6, 3, 10)  # Tue evening -> Wed
    assert cal.add(at(NY, 2026, 6, 5, 16), 3 * H) == at(NY, 2026, 6, 8, 11)  # Fri -> Mon
    assert cal.add(at(NY, 2026, 6, 6, 12), 8 * H) == at(NY, 2026, 6, 8, 17)  # Sat: a whole Monday
    assert cal.add(at(NY, 2026, 6, 6, 12), 8 * H + M) == at(NY, 2026, 6, 9, 9, 1)
    assert cal.add(at(NY, 2026, 6, 2, 8), 30 * M) == at(NY, 2026, 6, 2, 9, 30)
    assert cal.between(at(NY, 2026, 6, 5, 16), at(NY, 2026, 6, 8, 10)) == 2 * H
    assert cal.between(at(NY, 2026, 6, 6), at(NY, 2026, 6, 8)) == timedelta(0)


def test_business_days_target() -> None:
    cal = Calendar("business_hours", NY)
    assert cal.day_length == 8 * H
    five_days = Target(5, 0).as_timedelta(cal.day_length)
    assert cal.add(at(NY, 2026, 6, 8, 9), five_days) == at(NY, 2026, 6, 12, 17)


def test_working_intervals_are_utc_and_clipped() -> None:
    cal = Calendar("business_hours", NY)
    got = list(cal.working_intervals(at(NY, 2026, 6, 5, 16), at(NY, 2026, 6, 9, 10)))
    assert got == [
        (datetime(2026, 6, 5, 20, tzinfo=UTC), datetime(2026, 6, 5, 21, tzinfo=UTC)),
        (datetime(2026, 6, 8, 13, tzinfo=UTC), datetime(2026, 6, 8, 21, tzinfo=UTC)),
        (datetime(2026, 6, 9, 13, tzinfo=UTC), datetime(2026, 6, 9, 14, tzinfo=UTC)),
    ]
    assert list(cal.working_intervals(at(NY, 2026, 6, 9), at(NY, 2026, 6, 8))) == []


def test_custom_business_hours_in_kolkata() -> None:
    kolkata = ZoneInfo("Asia/Kolkata")
    cal = Calendar.from_config("business_hours", "Asia/Kolkata", business_hours="10:00-18:30")
    assert cal.tz == kolkata
    assert cal.day_length == 8 * H + 30 * M
    assert cal.add(at(kolkata, 2026, 6, 5, 18), H) == at(kolkata, 2026, 6, 8, 10, 30)


def test_is_working() -> None:
    cal = Calendar("business_hours", NY, "US")
    assert cal.is_working(at(NY, 2026, 6, 2, 9))
    assert not cal.is_working(at(NY, 2026, 6, 2, 17))
    assert not cal.is_working(at(NY, 2026, 11, 26, 12))


def test_add_zero_and_bad_input() -> None:
    cal = Calendar("business_hours", NY)
    saturday = at(NY, 2026, 6, 6, 12)
    assert cal.add(saturday, timedelta(0)) == saturday
    with pytest.raises(ValueError, match="negative"):
        cal.add(saturday, -H)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.add(datetime(2026, 6, 6, 12), H)
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.between(saturday, datetime(2026, 6, 8))


def test_calendar_validation() -> None:
    with pytest.raises(ValueError, match='unknown SLA clock "hours"'):
        Calendar("hours", NY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match='unknown time zone "Mars/Olympus"'):
        Calendar.from_config("weekdays", "Mars/Olympus")
    with pytest.raises(ValueError, match='no holiday calendar for "XX"'):
        Calendar("weekdays", NY, "XX")
    with pytest.raises(ValueError, match='no holiday calendar for "US/ZZ"'):
        Calendar("weekdays", NY, "US", subdiv="ZZ")
    with pytest.raises(ValueError, match="end after"):
        Calendar("business_hours", NY, day_start=time(17), day_end=time(9))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("9-5", "HH:MM-HH:MM"), ("17:00-09:00", "after the start"), ("25:00-26:00", "not a time of day")],
)
def test_parse_business_hours_errors(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_business_hours(text)
    assert parse_business_hours(" 08:30 - 16:45 ") == (time(8, 30), time(16, 45))


# ------------------------------------------------------------------ DST

# (zone, spring-forward Sunday, fall-back Sunday) in 2026; Sydney's spring is in October.
DST_SUNDAYS = [
    (NY, date(2026, 3, 8), date(2026, 11, 1)),
    (LONDON, date(2026, 3, 29), date(2026, 10, 25)),
    (SYDNEY, date(2026, 10, 4), date(2026, 4, 5)),
]


def _local(tz: ZoneInfo, d: date, hour: int) -> datetime:
    return datetime.combine(d, time(hour), tzinfo=tz)


@pytest.mark.parametrize(("tz", "spring", "fall"), DST_SUNDAYS)
def test_calendar_clock_counts_real_hours_across_dst(tz: ZoneInfo, spring: date, fall: date) -> None:
    cal = Calendar("calendar", tz)
    sat = timedelta(days=-1)
    assert cal.add(_local(tz, spring + sat, 12), 24 * H) == _local(tz, spring, 13)  # 23h Sunday
    assert cal.add(_local(tz, fall + sat, 12), 24 * H) == _local(tz, fall, 11)  # 25h Sunday


@pytest.mark.parametrize(("tz", "spring", "fall"), DST_SUNDAYS)
def test_weekdays_keep_wall_time_across_dst_weekends(tz: ZoneInfo, spring: date, fall: date) -> None:
    cal = Calendar("weekdays", tz)
    for sunday, real in ((spring, 71 * H), (fall, 73 * H)):
        friday, monday = sunday - timedelta(days=2), sunday + timedelta(days=1)
        end = cal.add(_local(tz, friday, 12), 24 * H)
        assert end == _local(tz, monday, 12)
        assert end - _local(tz, friday, 12) == real


@pytest.mark.parametrize(("tz", "spring", "fall"), DST_SUNDAYS)
def test_business_hours_across_dst_weekends(tz: ZoneInfo, spring: date, fall: date) -> None:
    cal = Calendar("business_hours", tz)
    for sunday in (spring, fall):
        friday, monday = sunday - timedelta(days=2), sunday + timedelta(days=1)
        assert cal.add(_local(tz, friday, 15), 4 * H) == _local(tz, monday, 11)
        assert cal.between(_local(tz, friday, 0), _local(tz, monday + timedelta(days=1), 0)) == 16 * H


def test_weekday_dst_change_counts_23_real_hours() -> None:
    # Israel springs forward on a Friday (2026-03-27, 02:00 -> 03:00), a working day here.
    tz = ZoneInfo("Asia/Jerusalem")
    cal = Calendar("weekdays", tz)
    friday, saturday = at(tz, 2026, 3, 27), at(tz, 2026, 3, 28)
    assert cal.between(friday, saturday) == 23 * H
    assert cal.add(friday, 23 * H) == saturday
    assert cal.add(friday, 24 * H) == at(tz, 2026, 3, 30, 1)


def test_transitions_at_midnight_on_working_days() -> None:
    # Cairo: Friday 2026-04-24 starts at 01:00 (00:00 doesn't exist); Thursday 2026-10-29 repeats 23:00-24:00.
    tz = ZoneInfo("Africa/Cairo")
    weekdays = Calendar("weekdays", tz)
    assert weekdays.between(at(tz, 2026, 4, 24, 1), at(tz, 2026, 4, 25)) == 23 * H
    thursday, friday = at(tz, 2026, 10, 29), at(tz, 2026, 10, 30)
    assert weekdays.between(thursday, friday) == 25 * H
    # A window inside the gap starts at the jump; one over the repeated hour gets both passes.
    early = Calendar("business_hours", tz, day_start=time(0, 30), day_end=time(2))
    assert early.between(at(tz, 2026, 4, 23, 12), at(tz, 2026, 4, 24, 12)) == H
    late = Calendar("business_hours", tz, day_start=time(22), day_end=time(23, 30))
    assert late.between(thursday, friday) == 2 * H
    for cal in (weekdays, early, late):
        ref = Reference(cal.kind, tz, None, None, cal.day_start, cal.day_end)
        for start in (at(tz, 2026, 4, 22, 20), at(tz, 2026, 10, 28, 20)):
            for minutes in (60, 600, 1500, 3000):
                got = cal.add(start, minutes * M)
                assert got == ref.add(start.astimezone(UTC), minutes), (cal, start, minutes)


def test_caches_can_be_cleared() -> None:
    cal = Calendar("weekdays", NY, "US")
    before = cal.add(at(NY, 2026, 11, 25, 10), 24 * H)
    clear_caches()
    assert cal.add(at(NY, 2026, 11, 25, 10), 24 * H) == before
