"""One queue's SLA policy: which target applies, the deadline, reminders, breach, and the clock in words.

Pure (no I/O, `now` always passed in). Built once per queue from the config (`Config.policy(key)`); the
services, the SLA sweep, the modal's validation and the cards all ask it, so a deadline is computed in
exactly one place. The rules, as the SA handbook states them:

* Time to allocate an SA (a claim, or a leader's assignment) is counted on the queue's clock
  (`triage.core.sla.Calendar`). On a ``triage_board`` queue "SLA for activity is 48 hours unless the
  issue is marked with an 'Expedite' label": every type gets its `[sla.targets]` value (48h by default).
  On an ``enterprise`` queue "the turn around time for a SA allocation is 24 hrs" for an opportunity
  request. A queue's own ``sla`` overrides win over both.
* ``Expedite`` (the label, or the modal's checkbox) applies the ``expedite`` target unless the type's
  own target is shorter: expediting only ever shortens.
* Events: "a 5 day SLA in place to secure SA participation", and the deadline never falls after the
  event: it is the earlier of the target and `event_lead` before the event's day starts (queue time).
  An event sooner than that is still accepted, flagged short notice; one too close even for the lead
  time is due at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from triage.core.sla import (
    DAY,
    ZERO,
    Calendar,
    SlaClock,
    Target,
    deadline,
    elapsed,
    parse_duration,
    resolve_target,
    threshold_times,
)

ENGAGEMENTS: tuple[str, ...] = ("triage_board", "enterprise")
# An enterprise queue allocates an SA to a qualified opportunity within 24 hours (unless the queue's own
# `sla` says otherwise); everything else keeps `[sla.targets]`.
ENGAGEMENT_TARGETS: dict[str, dict[str, str]] = {"triage_board": {}, "enterprise": {"opportunity": "24h"}}
DEFAULT_EVENT_LEAD = "1d"
EVENT = "event"
EXPEDITE = "expedite"

_UNIT_WORDS = {"calendar": "", "weekdays": "working ", "business_hours": "business "}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


@dataclass(frozen=True)
class SlaView:
    """One request's SLA as of a moment: what the sweep, the card and the summaries read."""

    target: Target
    deadline: datetime  # with an open pause: as if it ended now (it keeps moving while paused)
    thresholds: tuple[tuple[float, datetime], ...]  # (fraction, when), 1.0 = breach; empty while paused
    paused: bool
    stopped: bool
    cut_by_event: bool = False  # the event's lead time, not the target, set the deadline


@dataclass(frozen=True)
class SlaPolicy:
    """The SLA rules of one queue: its calendar, its effective targets, reminders and event lead time."""

    calendar: Calendar
    targets: Mapping[str, Target]  # per request type, plus "expedite"; engagement and overrides applied
    reminders: tuple[float, ...] = (0.5, 0.75)
    event_lead: Target = field(default_factory=lambda: parse_duration(DEFAULT_EVENT_LEAD))
    engagement: str = "triage_board"

    @classmethod
    def build(cls, *, clock: str, business_hours: str, timezone: str, country: str | None, subdiv: str | None,
              targets: Mapping[str, str], engagement: str = "triage_board",
              overrides: Mapping[str, str] | None = None, reminders: Iterable[float] = (0.5, 0.75),
              event_lead: str = DEFAULT_EVENT_LEAD) -> SlaPolicy:
        """From the config's strings: `[sla]`, `[sla.targets]` and one queue's keys."""
        if engagement not in ENGAGEMENTS:
            raise ValueError(f'unknown engagement "{engagement}": use one of {", ".join(ENGAGEMENTS)}')
        calendar = Calendar.from_config(clock, timezone, country, business_hours, subdiv)
        effective = {**targets, **ENGAGEMENT_TARGETS[engagement], **(overrides or {})}
        return cls(calendar, {k: parse_duration(v) for k, v in effective.items()}, tuple(sorted(set(reminders))),
                   parse_duration(event_lead), engagement)

    # -- targets and deadlines

    def target(self, request_type: str, expedite: bool) -> Target:
        """The type's target; expedited, the ``expedite`` target unless the type's own is shorter."""
        return resolve_target(request_type, expedite, self.targets, day_length=self.calendar.day_length)

    def amount(self, request_type: str, expedite: bool) -> timedelta:
        return self.target(request_type, expedite).as_timedelta(self.calendar.day_length)

    def event_cutoff(self, event_date: date) -> datetime:
        """The latest an event's SA may be allocated: `event_lead` (wall-clock) before the event's day
        begins in the queue's time zone."""
        start = datetime.combine(event_date, time(), tzinfo=self.calendar.tz)
        return _utc(start) - self.event_lead.as_timedelta(DAY)

    def _cutoff(self, request_type: str, event_date: date | None) -> datetime | None:
        return self.event_cutoff(event_date) if request_type == EVENT and event_date is not None else None

    def deadline(self, request_type: str, expedite: bool, clock: SlaClock | datetime, *,
                 event_date: date | None = None, now: datetime | None = None) -> datetime:
        """When the SA must be allocated by: the target on the queue's clock (pauses move it by the
        paused working time), never after an event's cutoff, never before the clock started."""
        clock = clock if isinstance(clock, SlaClock) else SlaClock(clock)
        due = deadline(clock.start, self.amount(request_type, expedite), self.calendar, clock.pauses, now=now)
        cutoff = self._cutoff(request_type, event_date)
        if cutoff is not None and cutoff < due:
            due = max(cutoff, _utc(clock.start))
        return due

    def _cut(self, request_type: str, expedite: bool, clock: SlaClock, event_date: date | None,
             now: datetime | None) -> bool:
        """Whether the event's cutoff, not the target, sets the deadline."""
        cutoff = self._cutoff(request_type, event_date)
        return cutoff is not None and cutoff < deadline(
            clock.start, self.amount(request_type, expedite), self.calendar, clock.pauses, now=now)

    def view(self, request_type: str, expedite: bool, clock: SlaClock, *, event_date: date | None = None,
             now: datetime) -> SlaView:
        """The request's SLA as of `now`: deadline, reminder thresholds (none while paused), flags."""
        target = self.target(request_type, expedite)
        paused = bool(clock.pauses) and clock.pauses[-1].end is None
        due = self.deadline(request_type, expedite, clock, event_date=event_date, now=now)
        cut = self._cut(request_type, expedite, clock, event_date, now)
        if paused or clock.stop is not None:
            return SlaView(target, due, (), paused, clock.stop is not None, cut)
        amount = target.as_timedelta(self.calendar.day_length)
        if cut:
            # Reminders keep their fractions, of the (shorter) time the event leaves.
            amount = elapsed((clock.start, clock.pauses, None), due, self.calendar)
        marks = threshold_times(clock.start, amount, self.calendar, self.reminders, clock.pauses) if amount > ZERO \
            else [(1.0, due)]
        marks = [(f, min(when, due)) for f, when in marks if f < 1.0] + [(1.0, due)]
        return SlaView(target, due, tuple(marks), False, False, cut)

    @staticmethod
    def next_check(view: SlaView, handled: Iterable[float]) -> datetime | None:
        """The earliest threshold not yet handled; None while paused or stopped, or when all are done."""
        done = {round(float(f), 6) for f in handled}
        return min((when for f, when in view.thresholds if round(f, 6) not in done), default=None)

    @staticmethod
    def breached(due: datetime, allocated_at: datetime | None, now: datetime) -> bool:
        """Missed: allocated after the deadline, or still waiting past it."""
        return _utc(allocated_at or now) > _utc(due)

    def short_notice(self, request_type: str, event_date: date | None, start: datetime) -> bool:
        """An event whose cutoff leaves less than its full target: accepted, but the leaders are told."""
        cutoff = self._cutoff(request_type, event_date)
        if cutoff is None:
            return False
        return cutoff < deadline(start, self.amount(EVENT, False), self.calendar)

    # -- in words

    def target_words(self, target: Target) -> str:
        """"24 working hours", "5 working days", "8 business hours", "48 hours" (calendar clock)."""
        q = _UNIT_WORDS[self.calendar.kind]
        hours, minutes = divmod(target.minutes, 60)
        parts = [_plural(target.days, q + "day")] if target.days else []
        if hours:
            parts.append(_plural(hours, (q if not parts else "") + "hour"))
        if minutes:
            parts.append(_plural(minutes, (q if not parts else "") + "minute"))
        return " ".join(parts) or "no time"

    def describe(self, request_type: str, expedite: bool, start: datetime, due: datetime, *,
                 event_date: date | None = None) -> str:
        """The clock in words, e.g. "24 working hours: Friday 16:00 → Monday 16:00 EST"."""
        words = self.target_words(self.target(request_type, expedite))
        if expedite and self.target(request_type, True) != self.target(request_type, False):
            words += " (expedited)"
        if self._cut(request_type, expedite, SlaClock(_utc(start)), event_date, None):
            lead = self.event_lead.as_timedelta(DAY)
            words += (f", cut to {_lead_words(lead)} before the event" if _utc(due) > _utc(start)
                      else ", due at once: the event is too close for the lead time")
        tz = self.calendar.tz
        a, b = _utc(start).astimezone(tz), _utc(due).astimezone(tz)
        fmt = "%A %H:%M" if b - a < timedelta(days=6) else "%a %d %b %H:%M"
        return f"{words}: {a:{fmt}} → {b:{fmt}} {b.tzname()}"


def _lead_words(lead: timedelta) -> str:
    if lead % DAY == ZERO:
        return _plural(lead // DAY, "day")
    return _plural(int(lead / timedelta(hours=1)), "hour")


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"datetime must be timezone-aware, got {value!r}")
    return value.astimezone(UTC)
