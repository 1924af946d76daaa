"""A deliberately plain minute-by-minute model of the SLA clock, to check `triage.core.sla` against.

A minute [t, t+1m) counts when its local wall time falls in a working window and no pause covers
it. No shortcuts beyond remembering holidays per year: it must be obviously right, not fast.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import holidays

MINUTE = timedelta(minutes=1)
Spans = Sequence[tuple[datetime, datetime]]


class Reference:
    def __init__(
        self,
        kind: str,
        tz: ZoneInfo,
        country: str | None = None,
        subdiv: str | None = None,
        day_start: time = time(9),
        day_end: time = time(17),
    ):
        self.kind, self.tz, self.country, self.subdiv = kind, tz, country, subdiv
        self.day_start, self.day_end = day_start, day_end
        self._holidays: dict[int, object] = {}

    def working_date(self, d: date) -> bool:
        if self.kind == "calendar":
            return True
        if d.weekday() >= 5:
            return False
        if self.country is None:
            return True
        if d.year not in self._holidays:
            self._holidays[d.year] = holidays.country_holidays(self.country, subdiv=self.subdiv, years=d.year)
        return d not in self._holidays[d.year]

    def counts(self, t: datetime, pauses: Spans = ()) -> bool:
        """Whether the minute starting at t counts (t in UTC, minute-aligned)."""
        if pauses and any(ps <= t < pe for ps, pe in pauses):
            return False
        local = t.astimezone(self.tz)
        if not self.working_date(local.date()):
            return False
        if self.kind == "business_hours":
            return self.day_start <= local.time() < self.day_end
        return True

    def between(self, start: datetime, end: datetime, pauses: Spans = ()) -> int:
        """Counted minutes in [start, end)."""
        n, t = 0, start
        while t < end:
            n += self.counts(t, pauses)
            t += MINUTE
        return n

    def add(self, start: datetime, minutes: int, pauses: Spans = ()) -> datetime:
        """The end of the minute in which the count reaches `minutes` (start itself for 0)."""
        if minutes == 0:
            return start
        n, t = 0, start
        while True:
            n += self.counts(t, pauses)
            t += MINUTE
            if n == minutes:
                return t


def utc_minute(minutes_since_epoch: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + minutes_since_epoch * MINUTE
