"""Property tests: the fast calendar arithmetic agrees with the minute-by-minute reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from triage.core.sla import Calendar, Pause, deadline, elapsed

from .reference import MINUTE, Reference, utc_minute

ZONES = [ZoneInfo(z) for z in ("America/New_York", "Europe/London", "Australia/Sydney", "UTC", "Asia/Kolkata")]
COUNTRIES = ["US", "GB", "AU", None]
KINDS = ["calendar", "weekdays", "business_hours"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _minutes(d: datetime) -> int:
    return (d - _EPOCH) // MINUTE


# Uniform starts rarely land near a DST change or a year end, so half the draws go near one.
_ANCHORS = [
    datetime(year, month, day, tzinfo=UTC)
    for year in range(2024, 2029)
    for month, day in (
        (1, 1),
        (3, 10),
        (3, 29),
        (4, 4),
        (7, 3),
        (10, 4),
        (10, 27),
        (11, 3),
        (11, 25),
        (12, 24),
    )
]
starts = st.one_of(
    st.integers(_minutes(datetime(2024, 1, 1, tzinfo=UTC)), _minutes(datetime(2028, 12, 31, tzinfo=UTC))).map(
        utc_minute
    ),
    st.tuples(st.sampled_from(_ANCHORS), st.integers(-5 * 1440, 5 * 1440)).map(lambda a: a[0] + a[1] * MINUTE),
)


@st.composite
def calendars(draw: st.DrawFn) -> tuple[Calendar, Reference]:
    kind, tz, country = (
        draw(st.sampled_from(KINDS)),
        draw(st.sampled_from(ZONES)),
        draw(st.sampled_from(COUNTRIES)),
    )
    return Calendar(kind, tz, country), Reference(kind, tz, country)  # type: ignore[arg-type]


def amounts(cal: Calendar) -> st.SearchStrategy[int]:
    """Working minutes from 1 to 10 days ("10d" on this clock), with the usual round targets."""
    day = cal.day_length // MINUTE
    # Plain integers() favours small values; the second branch makes multi-day targets common.
    return st.one_of(
        st.integers(1, 10 * day),
        st.integers(day, 10 * day),
        st.sampled_from([60, day // 2, day, 2 * day, 5 * day, 10 * day]),
    )


@st.composite
def pause_lists(draw: st.DrawFn, start: datetime) -> list[Pause]:
    """Up to three pauses near `start`, possibly overlapping, before it, or empty."""
    pauses = []
    for _ in range(draw(st.integers(0, 3))):
        begin = start + draw(st.integers(-1440, 14 * 1440)) * MINUTE
        pauses.append(Pause(begin, begin + draw(st.integers(0, 4 * 1440)) * MINUTE))
    return pauses


def spans(pauses: list[Pause], now: datetime | None = None) -> list[tuple[datetime, datetime]]:
    return [(p.start, p.end if p.end is not None else now) for p in pauses]  # type: ignore[misc]


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(st.data(), calendars(), starts)
def test_add_is_the_first_instant_with_that_much_working_time(
    data: st.DataObject, case: tuple[Calendar, Reference], start: datetime
) -> None:
    cal, ref = case
    amount = data.draw(amounts(cal), label="minutes")
    got = cal.add(start, amount * MINUTE)
    # reference_between(start, got) == amount, and got is the first such instant: the minute
    # just before it counts, so one minute earlier would be one short.
    assert ref.between(start, got - MINUTE) == amount - 1
    assert ref.counts(got - MINUTE)
    assert cal.between(start, got) == amount * MINUTE


@settings(PROPERTY, max_examples=120)
@given(calendars(), starts, st.integers(0, 6 * 1440))
def test_between_matches_reference(case: tuple[Calendar, Reference], start: datetime, length: int) -> None:
    cal, ref = case
    end = start + length * MINUTE
    assert cal.between(start, end) == ref.between(start, end) * MINUTE
    assert sum((e - s for s, e in cal.working_intervals(start, end)), timedelta(0)) == cal.between(start, end)


@settings(PROPERTY, max_examples=150)
@given(st.data(), calendars(), starts, st.booleans())
def test_deadline_with_pauses_matches_reference(
    data: st.DataObject, case: tuple[Calendar, Reference], start: datetime, last_open: bool
) -> None:
    cal, ref = case
    amount = data.draw(amounts(cal), label="minutes")
    pauses = data.draw(pause_lists(start), label="pauses")
    now = None
    if last_open and pauses:
        # The last pause is still open; `deadline` treats it as ending at `now`.
        now = pauses[-1].end
        pauses[-1] = Pause(pauses[-1].start, None)
    got = deadline(start, amount * MINUTE, cal, pauses, now=now)
    assert got == ref.add(start, amount, spans(pauses, now))
    if now is None:
        assert elapsed((start, pauses, None), got, cal) == amount * MINUTE


@settings(PROPERTY, max_examples=100)
@given(st.data(), calendars(), starts, st.integers(0, 6 * 1440), st.none() | st.integers(0, 6 * 1440))
def test_elapsed_matches_reference(
    data: st.DataObject, case: tuple[Calendar, Reference], start: datetime, upto: int, stop_after: int | None
) -> None:
    cal, ref = case
    pauses = data.draw(pause_lists(start), label="pauses")
    now = start + upto * MINUTE
    if pauses and data.draw(st.booleans(), label="open"):
        pauses[-1] = Pause(pauses[-1].start, None)
    stop = None if stop_after is None else start + stop_after * MINUTE
    end = now if stop is None else min(now, stop)
    expected = ref.between(start, end, spans(pauses, now))
    assert elapsed((start, pauses, stop), now, cal) == expected * MINUTE
