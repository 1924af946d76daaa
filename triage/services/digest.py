"""The leaders' weekly digest: last week's attainment per queue against the week before, what is late,
the most loaded SAs and why SLAs were missed, posted to leaders_channel at `[digest] day`/`hour` in
`[digest] timezone`.

Exactly once per week: the digest is an outbox entry whose dedupe key names the week's slot
(``digest:2026-11-09``), so several workers, or a worker restarted mid-pass, enqueue it once and the
outbox delivers it once. Each pass looks at the most recent slot at or before `now`: a worker that was
down at 09:00 on Monday sends that week's digest on its first pass back, once, and never an older one.
"""

from __future__ import annotations

import logging
from datetime import datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from triage import outbox
from triage.config import Config
from triage.core.slack_text import escape
from triage.db import read_scope, session_scope
from triage.models import OutboxEntry
from triage.services import summary as sm

log = logging.getLogger(__name__)

_REASONS = {"capacity": "No SA had capacity", "no_context": "Request lacked context",
            "late_triage": "Seen too late", "other": "Other"}


def last_slot(config: Config, now: datetime) -> datetime:
    """The most recent configured (day, hour) in the digest's zone at or before `now`."""
    d = config.digest
    local = now.astimezone(d.tz)
    day = local.date() - timedelta(days=(local.weekday() - d.weekday) % 7)
    slot = datetime.combine(day, time(d.hour), d.tz)
    if slot > now:
        slot = datetime.combine(day - timedelta(days=7), time(d.hour), d.tz)
    return slot


def week_of(config: Config, slot: datetime) -> sm.Period:
    """The seven days before the slot's day (Monday to Sunday for a Monday digest)."""
    day = slot.astimezone(config.digest.tz).date()
    return sm.Period(day - timedelta(days=7), day - timedelta(days=1), config.digest.tz)


def _pct(f: dict) -> str:
    if f is None or f.get("attainment") is None:
        return "no allocations"
    return f"{f['attainment'] * 100:.0f}% ({f['allocated_within_sla']}/{f['allocated']})"


def _arrow(now: dict | None, before: dict | None) -> str:
    a, b = (now or {}).get("attainment"), (before or {}).get("attainment")
    if a is None or b is None or abs(a - b) < 0.005:
        return ""
    return " :arrow_up:" if a > b else " :arrow_down:"


def _link(url: str | None, label: str) -> str:
    return f"<{url}|{escape(label)}>" if url else escape(label)


def digest_text(engine: Engine, config: Config, period: sm.Period, now: datetime) -> str:
    this = sm.summary(engine, config, period, now=now)
    before = sm.summary(engine, config, period.previous(), now=now)
    names = {q.key: q.name for q in config.queues}
    prev_queues = {q["queue"]: q for q in before["queues"]}
    t = this["totals"]
    lines = [f":bar_chart: *Weekly SLA digest: {period.since:%a %d %b} to {period.until:%a %d %b %Y}* "
             f"(requests received that week, {escape(period.tz.key)})",
             f"*All queues*: {_pct(t)} allocated within SLA, {_pct(before['totals'])} the week before"
             f"{_arrow(t, before['totals'])} · {t['received']} received · median "
             f"{sm_hours(t['time_to_allocate_hours']['p50'])}, p90 {sm_hours(t['time_to_allocate_hours']['p90'])}"]
    for q in this["queues"]:
        prev = prev_queues.get(q["queue"])
        lines.append(f"• *{escape(names.get(q['queue'], q['queue']))}*: {_pct(q)}, was {_pct(prev)}{_arrow(q, prev)}"
                     f" · {q['received']} received · {q['breached_open']} late and waiting")
    late = sm.late_and_at_risk(engine, config, now=now, limit=10)
    late = [r for r in late if r.late]
    lines.append(f"*Late and waiting now* ({len(late)}{'+' if len(late) == 10 else ''})" if late
                 else "*Late and waiting now*: nothing :white_check_mark:")
    for r in late:
        issue = f" · {_link(r.gitlab_url, 'issue')}" if r.gitlab_url else ""
        lines.append(f"• {_link(r.slack_url, r.reference)} {escape(r.customer_name[:60])} · "
                     f"{escape(names.get(r.queue, r.queue))} · {escape(r.left)}{issue}")
    loaded = [s for s in this["sas"] if s["open"]][:5]
    if loaded:
        lines.append("*Most loaded SAs*: " + " · ".join(f"<@{s['slack_user']}> {s['open']} open" for s in loaded))
    reasons = [f"{_REASONS.get(k, k)} {v}" for k, v in this["breach_reasons"].items() if v]
    if this.get("breach_reasons_unrecorded"):
        reasons.append(f"not recorded yet {this['breach_reasons_unrecorded']}")
    lines.append("*Why SLAs were missed*: " + (" · ".join(reasons) if reasons else "no misses"))
    return "\n".join(lines)


def sm_hours(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f}h"


def enqueue_due(engine: Engine, config: Config, *, now: datetime) -> bool:
    """Enqueue this week's digest if its slot has passed and it is not enqueued yet; True when enqueued."""
    if not config.digest.enabled or not config.slack.leaders_channel:
        return False
    slot = last_slot(config, now)
    key = f"digest:{slot.astimezone(config.digest.tz).date().isoformat()}"
    with read_scope(engine) as s:  # the cheap check, every pass; the unique key settles races
        if s.execute(sa.select(OutboxEntry.id).where(OutboxEntry.dedupe_key == key)).first() is not None:
            return False
    text = digest_text(engine, config, week_of(config, slot), now)
    with session_scope(engine) as s:
        added = outbox.enqueue(s, kind=outbox.Kind.POST, lane=outbox.Lane.LEADERS, lane_key="digest", key=key,
                               payload={"channel": config.slack.leaders_channel, "text": text}, now=now)
    if added:
        log.info("weekly digest for the week before %s enqueued", slot.date())
    return added
