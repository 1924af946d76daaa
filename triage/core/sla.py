"""SLA clocks, targets and deadlines. Pure: no I/O, and `now` is always passed in.

Vocabulary:

* A *clock kind* says which time counts towards an SLA:
  ``calendar`` counts every instant; ``weekdays`` counts whole local days Monday to Friday that
  are not public holidays of the queue's country; ``business_hours`` counts only the configured
  hours (e.g. 09:00-17:00 local) of those working days.
* Working time is always *real elapsed time* (measured in UTC) inside the working local windows.
  So on a ``weekdays`` clock a working day on which DST starts counts 23 real hours, and 25 on the
  day it ends; a ``calendar`` day across a DST change is likewise 23 or 25 wall-clock hours apart.
  Business hours are 8 real hours unless a transition falls inside the window, which real zones
  avoid. Window edges are local wall times, mapped to UTC exactly (see `_wall_span_to_utc`).
* A *target* (`Target`) is "24h", "5d", "1d 4h"...: hours and minutes are working time; a day is
  24 working hours on ``calendar``/``weekdays`` clocks and one business day (the window's length)
  on ``business_hours``.
* The clock starts at submission and stops at allocation; while a request waits on the AE it is
  paused. The clock's history is a list of `SlaClockEvent`, from which everything is recomputed.

Every datetime argument must be timezone-aware; every datetime returned is in UTC.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal, cast, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

ClockKind = Literal["calendar", "weekdays", "business_hours"]
CLOCK_KINDS: tuple[str, ...] = get_args(ClockKind)
EventKind = Literal["start", "pause", "resume", "stop"]

ZERO = timedelta(0)
DAY = timedelta(days=1)
_MINUTE = timedelta(minutes=1)
_TICK = timedelta(microseconds=1)
# No real calendar has this many non-working days in a row; hitting it means a bug or bad data,
# and failing beats looping forever.
_MAX_IDLE_DAYS = 400


# --------------------------------------------------------------------------- targets


_DURATION_TOKEN = re.compile(r"([0-9]+)\s*([dhm])", re.IGNORECASE)
# Beyond this a target is surely a typo, and huge numbers would overflow datetime arithmetic.
_MAX_TARGET = timedelta(days=366)
_DURATION_HELP = 'use whole numbers with d, h or m, e.g. "24h", "5d", "1d 4h" or "90m"'


@dataclass(frozen=True)
class Target:
    """An SLA target: whole working days plus working minutes.

    Days stay separate because their length depends on the clock (24h, or one business day).
    """

    days: int = 0
    minutes: int = 0

    def __post_init__(self) -> None:
        if self.days < 0 or self.minutes < 0:
            raise ValueError("an SLA target can't be negative")

    def as_timedelta(self, day_length: timedelta = DAY) -> timedelta:
        """The amount of working time this target stands for on a clock with this day length."""
        return self.days * day_length + self.minutes * _MINUTE

    def __str__(self) -> str:
        # Hours are not folded into days: "48h" and "2d" differ on a business-hours clock.
        hours, minutes = divmod(self.minutes, 60)
        parts = [f"{self.days}d"] if self.days else []
        if hours:
            parts.append(f"{hours}h")
        if minutes:
            parts.append(f"{minutes}m")
        return " ".join(parts) or "0m"


def parse_duration(text: str) -> Target:
    """Parse "24h", "5d", "90m", "1d 4h"... into a `Target`; ValueError says what is wrong."""
    if not isinstance(text, str):
        raise ValueError(f"invalid duration {text!r}: {_DURATION_HELP}")
    cleaned = text.strip()
    if not cleaned:
        raise ValueError(f"empty duration: {_DURATION_HELP}")
    seen: dict[str, int] = {}
    pos = 0
    for match in _DURATION_TOKEN.finditer(cleaned):
        if cleaned[pos : match.start()].strip():
            break
        unit = match.group(2).lower()
        if unit in seen:
            raise ValueError(f'invalid duration "{text}": "{unit}" appears twice')
        seen[unit] = int(match.group(1))
        pos = match.end()
    if not seen or cleaned[pos:].strip():
        raise ValueError(f'invalid duration "{text}": {_DURATION_HELP}')
    target = Target(days=seen.get("d", 0), minutes=seen.get("h", 0) * 60 + seen.get("m", 0))
    if target == Target():
        raise ValueError(f'invalid duration "{text}": an SLA target must be longer than zero')
    if target.days * 24 * 60 + target.minutes > _MAX_TARGET // _MINUTE:
        raise ValueError(f'invalid duration "{text}": an SLA target can be at most a year')
    return target


def resolve_target(
    request_type: str,
    expedite: bool,
    targets: Mapping[str, Target],
    overrides: Mapping[str, Target] | None = None,
    *,
    day_length: timedelta = DAY,
) -> Target:
    """The target for one request: the queue's overrides win over `[sla.targets]`, and when
    expedited the ``expedite`` target applies unless the type's own target is shorter.

    `day_length` (pass `Calendar.day_length`) decides whether "5d" is longer than "24h".
    """
    effective = {**targets, **(overrides or {})}
    try:
        own = effective[request_type]
    except KeyError:
        known = ", ".join(sorted(k for k in effective if k != "expedite")) or "none"
        raise ValueError(f'no SLA target for request type "{request_type}" (known: {known})') from None
    fast = effective.get("expedite")
    if not expedite or fast is None:
        return own
    return own if own.as_timedelta(day_length) <= fast.as_timedelta(day_length) else fast


def parse_business_hours(text: str) -> tuple[time, time]:
    """Parse "09:00-17:00" into (start, end) local times; the window may not cross midnight."""
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*", text or "")
    if not match:
        raise ValueError(f'invalid business hours "{text}": use "HH:MM-HH:MM", e.g. "09:00-17:00"')
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    try:
        start, end = time(h1, m1), time(h2, m2)
    except ValueError:
        raise ValueError(f'invalid business hours "{text}": not a time of day') from None
    if start >= end:
        raise ValueError(f'invalid business hours "{text}": the end must be after the start')
    return start, end


# --------------------------------------------------------------------------- calendars


@functools.lru_cache(maxsize=256)
def _holiday_dates(country: str, subdiv: str | None, year: int) -> frozenset[date]:
    # Built once per country and year: constructing a holidays calendar is far slower than a lookup.
    return frozenset(holidays.country_holidays(country, subdiv=subdiv, years=year).keys())


@functools.lru_cache(maxsize=64)
def _check_country(country: str, subdiv: str | None) -> None:
    try:
        holidays.country_holidays(country, subdiv=subdiv)
    except NotImplementedError:
        where = f"{country}/{subdiv}" if subdiv else country
        raise ValueError(f'no holiday calendar for "{where}"') from None


def _as_utc(value: datetime, name: str = "datetime") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)


def _offset(tz: ZoneInfo, instant: datetime) -> timedelta:
    return cast(timedelta, instant.astimezone(tz).utcoffset())


def _wall_to_utc(naive: datetime, offset: timedelta) -> datetime:
    return (naive - offset).replace(tzinfo=UTC)


def _wall_span_to_utc(tz: ZoneInfo, a: datetime, b: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """The UTC instants whose wall-clock time in `tz` lies in [a, b) (naive local datetimes).

    Exact across DST: an edge inside a spring-forward gap starts at the jump, and a window
    overlapping a repeated fall-back hour includes both passes. Assumes at most one offset change
    inside the span, true of every real zone for spans of a day.
    """
    # fold=0 and fold=1 give the earliest and latest readings of an ambiguous or missing wall time,
    # so [lo, hi) surely contains every instant we want.
    lo = min(a.replace(tzinfo=tz, fold=0).astimezone(UTC), a.replace(tzinfo=tz, fold=1).astimezone(UTC))
    hi = max(b.replace(tzinfo=tz, fold=0).astimezone(UTC), b.replace(tzinfo=tz, fold=1).astimezone(UTC))
    o_lo, o_hi = _offset(tz, lo), _offset(tz, hi - _TICK)
    if o_lo == o_hi:
        return ((_wall_to_utc(a, o_lo), _wall_to_utc(b, o_lo)),)
    # A DST change inside: find its instant, then map each side with its own constant offset.
    left, right = lo, hi - _TICK
    while right - left > _TICK:
        mid = left + (right - left) / 2
        if _offset(tz, mid) == o_hi:
            right = mid
        else:
            left = mid
    pieces: list[tuple[datetime, datetime]] = []
    for p_lo, p_hi, off in ((lo, right, o_lo), (right, hi, o_hi)):
        s, e = max(p_lo, _wall_to_utc(a, off)), min(p_hi, _wall_to_utc(b, off))
        if s >= e:
            continue
        if pieces and pieces[-1][1] == s:
            pieces[-1] = (pieces[-1][0], e)
        else:
            pieces.append((s, e))
    return tuple(pieces)


@functools.lru_cache(maxsize=8192)
def _day_windows(cal: Calendar, day: date) -> tuple[tuple[datetime, datetime], ...]:
    # Cached per (calendar, local date): sweeps recompute the same few weeks over and over.
    if not cal.is_working_day(day):
        return ()
    if cal.kind == "weekdays":
        a, b = datetime.combine(day, time()), datetime.combine(day + DAY, time())
    else:
        a, b = datetime.combine(day, cal.day_start), datetime.combine(day, cal.day_end)
    return _wall_span_to_utc(cal.tz, a, b)


@dataclass(frozen=True)
class Calendar:
    """Which instants count as working time for one queue."""

    kind: ClockKind
    tz: ZoneInfo
    country: str | None = None
    subdiv: str | None = None
    day_start: time = time(9)
    day_end: time = time(17)

    def __post_init__(self) -> None:
        if self.kind not in CLOCK_KINDS:
            raise ValueError(f'unknown SLA clock "{self.kind}": use one of {", ".join(CLOCK_KINDS)}')
        if isinstance(self.tz, str):
            try:
                object.__setattr__(self, "tz", ZoneInfo(self.tz))
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f'unknown time zone "{self.tz}"') from None
        if not isinstance(self.tz, ZoneInfo):
            raise ValueError(f"tz must be a ZoneInfo, got {self.tz!r}")
        if self.day_start >= self.day_end:
            raise ValueError("business hours must end after they start, within one day")
        if self.country is not None:
            _check_country(self.country, self.subdiv)

    @classmethod
    def from_config(
        cls,
        clock: str,
        timezone: str,
        country: str | None = None,
        business_hours: str = "09:00-17:00",
        subdiv: str | None = None,
    ) -> Calendar:
        """Build from the config file's values (`[sla] clock`, a queue's timezone and holidays)."""
        day_start, day_end = parse_business_hours(business_hours)
        return cls(cast(ClockKind, clock), cast(ZoneInfo, timezone), country, subdiv, day_start, day_end)

    @property
    def day_length(self) -> timedelta:
        """How much working time "1d" means on this clock."""
        if self.kind == "business_hours":
            return datetime.combine(date.min, self.day_end) - datetime.combine(date.min, self.day_start)
        return DAY

    def is_working_day(self, day: date) -> bool:
        """Whether `day` (a local date) has working time: every day on the calendar clock,
        else Monday to Friday and not a public holiday."""
        if self.kind == "calendar":
            return True
        if day.weekday() >= 5:
            return False
        return self.country is None or day not in _holiday_dates(self.country, self.subdiv, day.year)

    def is_working(self, instant: datetime) -> bool:
        """Whether the clock runs at this instant."""
        at = _as_utc(instant)
        return self.between(at, at + _TICK) > ZERO

    def _windows(self, start: datetime, end: datetime | None = None) -> Iterator[tuple[datetime, datetime]]:
        # Day by day: each working day is one or two ready-made UTC windows, so whole days (and
        # non-working days) cost O(1) whatever their length; nothing steps through minutes.
        # Starting at start's local date is enough: a date's windows only hold instants whose local
        # date is that date. (A zone falling back across midnight by less than the time past
        # midnight would break this ordering; no current zone does.)
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date() if end is not None else None
        idle = 0
        while last is None or day <= last:
            windows = _day_windows(self, day)
            for ws, we in windows:
                if we <= start:
                    continue
                if end is not None and ws >= end:
                    return
                yield max(ws, start), (we if end is None else min(we, end))
            idle = 0 if windows else idle + 1
            if idle > _MAX_IDLE_DAYS:
                raise RuntimeError(f"no working time in {_MAX_IDLE_DAYS} days from {day}; check {self!r}")
            day += DAY

    def working_intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The working parts of [start, end), in UTC and in order."""
        start, end = _as_utc(start, "start"), _as_utc(end, "end")
        if end <= start:
            return
        if self.kind == "calendar":
            yield start, end
            return
        yield from self._windows(start, end)

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Working time in [start, end); zero when end is not after start."""
        start, end = _as_utc(start, "start"), _as_utc(end, "end")
        if end <= start:
            return ZERO
        if self.kind == "calendar":
            return end - start
        return sum((we - ws for ws, we in self._windows(start, end)), ZERO)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The first instant by which `amount` of working time has passed since `start`.

        Outside working time the count begins at the next working instant; an amount that
        exactly uses up a window ends at the window's end (Friday 17:00, not Monday 09:00).
        A zero amount returns `start` unchanged.
        """
        start = _as_utc(start, "start")
        if amount < ZERO:
            raise ValueError(f"can't add a negative amount of working time ({amount})")
        if amount == ZERO:
            return start
        if self.kind == "calendar":
            return start + amount
        left = amount
        for ws, we in self._windows(start):
            if left <= we - ws:
                return ws + left
            left -= we - ws
        raise AssertionError("unreachable: _windows is endless")  # pragma: no cover


def clear_caches() -> None:
    """Forget cached holidays and day windows (tests, benchmarks, a long-lived process after a
    holidays upgrade)."""
    _day_windows.cache_clear()
    _holiday_dates.cache_clear()


# --------------------------------------------------------------------------- clock history


@dataclass(frozen=True)
class Pause:
    """A span during which the SLA clock stood still; `end` is None while still paused."""

    start: datetime
    end: datetime | None = None


@dataclass(frozen=True)
class SlaClockEvent:
    """One recorded change of the SLA clock."""

    at: datetime
    kind: EventKind


@dataclass(frozen=True)
class SlaClock:
    """The clock's history folded into start, pauses and stop."""

    start: datetime
    pauses: tuple[Pause, ...] = ()
    stop: datetime | None = None

    @classmethod
    def from_events(cls, events: Iterable[SlaClockEvent]) -> SlaClock:
        """Fold events in time order (ties keep their recorded order).

        Repeated pauses or resumes are ignored, so replays are harmless. Stopping while paused
        ends the pause. A "start" or "resume" after a "stop" (say, an unclaim) restarts the clock;
        the stopped span becomes a pause so elapsed time carries on from where it was.
        """
        start: datetime | None = None
        stop: datetime | None = None
        paused_at: datetime | None = None
        pauses: list[Pause] = []
        for event in sorted(events, key=lambda e: _as_utc(e.at, "event time")):
            at = _as_utc(event.at, "event time")
            if event.kind not in get_args(EventKind):
                raise ValueError(f'unknown SLA clock event "{event.kind}"')
            if start is None:
                if event.kind == "start":
                    start = at
                continue  # nothing to pause or stop before the clock has started
            if stop is not None:
                if event.kind in ("start", "resume"):
                    pauses.append(Pause(stop, at))
                    stop = None
                continue
            if event.kind == "pause" and paused_at is None:
                paused_at = at
            elif event.kind == "resume" and paused_at is not None:
                pauses.append(Pause(paused_at, at))
                paused_at = None
            elif event.kind == "stop":
                if paused_at is not None:
                    pauses.append(Pause(paused_at, at))
                    paused_at = None
                stop = at
        if start is None:
            raise ValueError("the SLA clock has no start event")
        if paused_at is not None:
            pauses.append(Pause(paused_at, None))
        return cls(start, tuple(pauses), stop)


def pauses_from_events(events: Iterable[SlaClockEvent]) -> list[Pause]:
    """The pauses recorded in a clock history; the last may be open (end None)."""
    return list(SlaClock.from_events(events).pauses)


ClockInput = SlaClock | Iterable[SlaClockEvent] | tuple[datetime, Sequence[Pause], datetime | None]


def _to_clock(clock: ClockInput) -> SlaClock:
    if isinstance(clock, SlaClock):
        return clock
    if isinstance(clock, tuple) and len(clock) == 3 and isinstance(clock[0], datetime):
        start, pauses, stop = cast(tuple[datetime, Sequence[Pause], datetime | None], clock)
        return SlaClock(start, tuple(pauses), stop)
    return SlaClock.from_events(cast(Iterable[SlaClockEvent], clock))


def _pause_spans(
    pauses: Iterable[Pause], start: datetime, end: datetime | None, now: datetime | None
) -> list[tuple[datetime, datetime]]:
    """Pauses as sorted, merged UTC spans clipped to [start, end]; an open pause runs to `now`."""
    spans: list[tuple[datetime, datetime]] = []
    for pause in pauses:
        if pause.end is None:
            if now is None:
                raise ValueError("an open pause needs `now` to say how long it has lasted")
            p_end = _as_utc(now, "now")
        else:
            p_end = _as_utc(pause.end, "pause end")
        p_start = max(_as_utc(pause.start, "pause start"), start)
        if end is not None:
            p_end = min(p_end, end)
        if p_start < p_end:
            spans.append((p_start, p_end))
    spans.sort()
    merged: list[tuple[datetime, datetime]] = []
    for s, e in spans:
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def elapsed(clock: ClockInput, now: datetime, cal: Calendar) -> timedelta:
    """SLA time used: working time from start to min(now, stop), paused spans excluded.

    `clock` is an `SlaClock`, the clock's events, or a (start, pauses, stop) tuple.
    """
    state = _to_clock(clock)
    start, now = _as_utc(state.start, "start"), _as_utc(now, "now")
    end = now if state.stop is None else min(now, _as_utc(state.stop, "stop"))
    if end <= start:
        return ZERO
    total = cal.between(start, end)
    for ps, pe in _pause_spans(state.pauses, start, end, now):
        total -= cal.between(ps, pe)
    return total


# --------------------------------------------------------------------------- deadlines


def _amount(target: Target | timedelta, cal: Calendar) -> timedelta:
    amount = target.as_timedelta(cal.day_length) if isinstance(target, Target) else target
    if amount < ZERO:
        raise ValueError(f"an SLA target can't be negative ({amount})")
    return amount


def deadline(
    start: datetime,
    target: Target | timedelta,
    cal: Calendar,
    pauses: Sequence[Pause] = (),
    now: datetime | None = None,
) -> datetime:
    """The first instant at which `target` of unpaused working time has passed since `start`.

    Each pause that begins before that instant moves it later by exactly the working time the
    pause covers (a pause over a weekend moves a weekdays deadline by nothing). A pause that
    begins after the deadline changes nothing: the SLA was already breached. An open pause
    (end None) is taken to end at `now`, so while paused the deadline keeps moving and is never
    reached; `now` is required when a pause is open.
    """
    start = _as_utc(start, "start")
    left = _amount(target, cal)
    if left == ZERO:
        return start
    cur = start
    for ps, pe in _pause_spans(pauses, start, None, now):
        if pe <= cur:
            continue
        if ps > cur:
            candidate = cal.add(cur, left)
            if candidate <= ps:
                return candidate
            left -= cal.between(cur, ps)
        cur = max(cur, pe)
    return cal.add(cur, left)


def threshold_times(
    start: datetime,
    target: Target | timedelta,
    cal: Calendar,
    fractions: Iterable[float],
    pauses: Sequence[Pause] = (),
    now: datetime | None = None,
) -> list[tuple[float, datetime]]:
    """When each reminder fraction of the SLA is reached, plus 1.0 (the breach), in order.

    Fractions must lie in (0, 1]; duplicates are dropped. The times follow `deadline`'s rules.
    """
    amount = _amount(target, cal)
    wanted = set()
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ValueError(f"a reminder fraction must be between 0 and 1, got {fraction}")
        wanted.add(float(fraction))
    wanted.add(1.0)
    return [(f, deadline(start, amount * f, cal, pauses, now)) for f in sorted(wanted)]


def remaining(
    start: datetime,
    target: Target | timedelta,
    cal: Calendar,
    *,
    now: datetime,
    pauses: Sequence[Pause] = (),
    stop: datetime | None = None,
) -> timedelta:
    """Working time left before the breach; negative once breached."""
    return _amount(target, cal) - elapsed((start, pauses, stop), now, cal)


def fraction_elapsed(
    start: datetime,
    target: Target | timedelta,
    cal: Calendar,
    *,
    now: datetime,
    pauses: Sequence[Pause] = (),
    stop: datetime | None = None,
) -> float:
    """Share of the SLA used so far (1.0 = breach); a zero target counts as fully used."""
    amount = _amount(target, cal)
    if amount == ZERO:
        return 1.0
    return elapsed((start, pauses, stop), now, cal) / amount


# --------------------------------------------------------------------------- display


def format_duration(td: timedelta) -> str:
    """Short, two-unit rendering to the nearest minute: "45m", "3h 20m", "2d 4h" (24h days)."""
    sign = "-" if td < ZERO else ""
    total = round(abs(td) / _MINUTE)
    days, rest = divmod(total, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        text = f"{days}d {hours}h" if hours else f"{days}d"
    elif hours:
        text = f"{hours}h {minutes}m" if minutes else f"{hours}h"
    else:
        text = f"{minutes}m"
    return sign + text


def humanize_left(deadline: datetime, now: datetime) -> str:
    """Wall-clock time to the deadline: "due in 3h 20m", "due now" (within a minute) or "2h 5m late"."""
    delta = _as_utc(deadline, "deadline") - _as_utc(now, "now")
    if abs(delta) < _MINUTE:
        return "due now"
    if delta > ZERO:
        return f"due in {format_duration(delta)}"
    return f"{format_duration(-delta)} late"
