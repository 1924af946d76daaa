"""Benchmark: SLA deadline computations per second, `Calendar.add` vs a minute-by-minute reference.

Run with `python bench/bench_sla.py`; prints a Markdown table and takes well under a minute.
"warm" reuses the per-day window cache as a long-running worker would; "cold" clears it before
every call, so each deadline is computed from scratch (holiday tables stay cached in both).
"""

from __future__ import annotations

import random
import sys
import time as clock
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a plain checkout

from triage.core import sla

MINUTE = timedelta(minutes=1)
BUDGET = 0.4  # seconds of measuring per cell; 27 cells keep the whole run around 15 s
ZONE = ZoneInfo("America/New_York")


class MinuteReference:
    """Steps through UTC minutes, counting those whose local time is in a working window."""

    def __init__(self, cal: sla.Calendar):
        self.cal = cal
        self._holidays: dict[int, object] = {}

    def _working_date(self, d: date) -> bool:
        if self.cal.kind == "calendar":
            return True
        if d.weekday() >= 5:
            return False
        if self.cal.country is None:
            return True
        if d.year not in self._holidays:
            self._holidays[d.year] = holidays.country_holidays(self.cal.country, years=d.year)
        return d not in self._holidays[d.year]

    def _counts(self, t: datetime) -> bool:
        local = t.astimezone(self.cal.tz)
        if not self._working_date(local.date()):
            return False
        return self.cal.kind != "business_hours" or self.cal.day_start <= local.time() < self.cal.day_end

    def add(self, start: datetime, amount: timedelta) -> datetime:
        want, n, t = amount // MINUTE, 0, start
        while n < want:
            n += self._counts(t)
            t += MINUTE
        return t


def rate(fn: Callable[[datetime], datetime], starts: list[datetime], before: Callable[[], None]) -> float:
    """Calls per second of fn over the starts, cycling until the time budget is spent."""
    calls, began = 0, clock.perf_counter()
    while True:
        for start in starts:
            before()
            fn(start)
            calls += 1
            elapsed = clock.perf_counter() - began
            if elapsed >= BUDGET and calls >= 3:
                return calls / elapsed


def nothing() -> None:
    """Nothing to reset between calls."""


def main() -> None:
    rng = random.Random(20261126)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    starts = [base + rng.randrange(365 * 24 * 60) * MINUTE for _ in range(500)]
    rows = []
    for kind in sla.CLOCK_KINDS:
        cal = sla.Calendar(kind, ZONE, "US", day_start=time(9), day_end=time(17))  # type: ignore[arg-type]
        ref = MinuteReference(cal)
        for text in ("24h", "48h", "5d"):
            amount = sla.parse_duration(text).as_timedelta(cal.day_length)
            for start in starts[:20]:  # the two must agree before their speeds mean anything
                assert cal.add(start, amount) == ref.add(start, amount), (kind, text, start)
            warm = rate(lambda s, c=cal, a=amount: c.add(s, a), starts, nothing)
            cold = rate(lambda s, c=cal, a=amount: c.add(s, a), starts, sla._day_windows.cache_clear)
            slow = rate(lambda s, r=ref, a=amount: r.add(s, a), starts, nothing)
            rows.append((kind, text, warm, cold, slow))

    print(f"Deadlines per second, {ZONE.key} with US holidays, business hours 09:00-17:00,")
    print(f"random minute-aligned starts in 2026, Python {sys.version.split()[0]}.\n")
    header = ["clock", "target", "add warm /s", "add cold /s", "reference /s", "ratio warm", "ratio cold"]
    print("| " + " | ".join(header) + " |")
    print("| --- | --- |" + " ---: |" * 5)
    for kind, text, warm, cold, slow in rows:
        cells = [kind, text, f"{warm:,.0f}", f"{cold:,.0f}", f"{slow:,.1f}"]
        cells += [f"{warm / slow:,.0f}x", f"{cold / slow:,.0f}x"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
