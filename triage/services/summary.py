"""The leaders' SLA summary: one module computes every figure that Slack, the dashboard and the API show.

**The period rule.** A request counts in the period in which it was *received* (submitted), whatever
happened to it later: a request received on the 30th and claimed on the 2nd counts in the month of
the 30th. A period is a range of whole calendar days, both ends included, in the reporting time zone
(``[digest] timezone``, UTC unless configured). States that describe "now" (``open_unallocated``,
``breached_open``, an SA's ``open`` claims) are as of the moment the summary is computed.

**Figures.** ``allocated`` counts requests that have an SA (claimed or assigned) now; a request that
was claimed and returned to the queue counts again only once it is re-allocated. Time to allocate is
the SLA clock's working time from submission to allocation, paused time (waiting on the AE) and the
span an SA held it before handing it back excluded; it is stored on the request when it is allocated
(`record_allocation`), so summaries aggregate a column. ``attainment`` is
``allocated_within_sla / allocated``, None when nothing was allocated.

Everything is SQL aggregates over the ``request`` table's ``created_at`` index: no query loads every
row into Python. Percentiles use PostgreSQL's ``percentile_cont``; SQLite has none, so there the
ranks needed for linear interpolation are picked with window functions and only those rows are read.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from triage import repo
from triage.config import Config
from triage.core import sla
from triage.core.lifecycle import ACTIVE_STATUSES, CLOSED_STATUSES
from triage.db import read_scope
from triage.models import Request, RequestEvent, reference_of
from triage.services import sla_sweep

PERIOD_FORMS = ("7d", "30d", "quarter")
PERIOD_HELP = "a period is 7d, 30d or quarter (the calendar quarter so far)"
BREACH_REASON_KINDS = ("capacity", "no_context", "late_triage", "other")
AT_RISK_FRACTION = 0.75  # an open request that has used this much of its SLA is "at risk"
# Time-to-allocate histogram edges, in SLA-clock hours.
HISTOGRAM_EDGES = (4.0, 8.0, 24.0, 48.0, 120.0)
_CHANNEL = re.compile(r"^[CGD][A-Z0-9]{2,}$")
_TS = re.compile(r"^\d{6,}\.\d{1,9}$")


# ---------------------------------------------------------------- periods


@dataclass(frozen=True)
class Period:
    """Whole days `since`..`until` (both included) in `tz`."""

    since: date
    until: date
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.until < self.since:
            raise ValueError("the period ends before it starts")

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time(), self.tz).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.until + timedelta(days=1), time(), self.tz).astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    def previous(self) -> Period:
        return Period(self.since - timedelta(days=self.days), self.since - timedelta(days=1), self.tz)


def report_tz(config: Config) -> ZoneInfo:
    return config.digest.tz


def period_named(form: str, config: Config, now: datetime) -> Period:
    """"7d" and "30d": that many days up to and including today; "quarter": the calendar quarter so far."""
    tz = report_tz(config)
    today = now.astimezone(tz).date()
    form = form.strip().lower()
    if form == "quarter":
        first_month = 3 * ((today.month - 1) // 3) + 1
        return Period(date(today.year, first_month, 1), today, tz)
    m = re.fullmatch(r"(\d{1,3})d", form)
    if m and 1 <= int(m[1]) <= 366:
        return Period(today - timedelta(days=int(m[1]) - 1), today, tz)
    raise ValueError(PERIOD_HELP)


def period_between(since: date | None, until: date | None, config: Config, now: datetime) -> Period:
    """The API's `since`/`until` (ISO dates, both optional): missing ends default to the last 30 days."""
    tz = report_tz(config)
    until = until or now.astimezone(tz).date()
    since = since or until - timedelta(days=29)
    if until < since:
        raise ValueError("until is before since")
    if (until - since).days > 3660:
        raise ValueError("a period can be at most ten years")
    return Period(since, until, tz)


# ---------------------------------------------------------------- stored per-request figures


def record_allocation(session: Any, request: Request, config: Config, *, now: datetime, late: bool) -> None:
    """Store the request's time to allocate on its SLA clock and whether it was in time.

    Called in the claim/assign transaction, after the clock's stop event is added. A re-allocation
    after an unclaim overwrites both: the span the first SA held it is a pause on the clock.
    """
    queue = config.queue(request.queue)
    if queue is None:
        hours = (now - request.created_at).total_seconds() / 3600
    else:
        events = repo.events_of(session=session, request_id=request.id)
        clock = sla_sweep.clock_of(request, events)
        hours = sla.elapsed(clock, now, config.policy(queue.key).calendar).total_seconds() / 3600
    session.execute(sa.update(Request).where(Request.id == request.id)
                    .values(sla_hours_to_allocate=round(hours, 4), allocated_within_sla=not late))


# ---------------------------------------------------------------- SQL pieces

_r = Request
_allocated = _r.allocated_at.isnot(None)
_closed = _r.status.in_(tuple(CLOSED_STATUSES))
# The positive list, not NOT IN (closed): it can use ix_request_status, so "open now" reads only open rows.
_active = _r.status.in_(tuple(sorted(ACTIVE_STATUSES)))
_open_unallocated = sa.and_(_active, _r.allocated_at.is_(None))
_within = sa.func.coalesce(_r.allocated_within_sla, _r.allocated_at <= _r.deadline)
_hours = sa.case((_allocated, _r.sla_hours_to_allocate))
_asked = _r.needs_info_at.isnot(None)


def _breached_open(now: datetime):
    """Open, unallocated and past its deadline. A request waiting on the AE has a moving deadline, so it
    counts only when the deadline had already passed before the wait began."""
    paused_since = (sa.select(sa.func.max(RequestEvent.at))
                    .where(RequestEvent.request_id == _r.id, RequestEvent.kind == "sla_pause").scalar_subquery())
    return sa.and_(_open_unallocated, _r.deadline < now,
                   sa.or_(_r.status != "waiting", _r.deadline < paused_since))


def _one(cond) -> Any:
    return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)


def _in_period(period: Period, queues: Sequence[str] | None) -> list:
    cond = [_r.created_at >= period.start, _r.created_at < period.end]
    if queues is not None:
        cond.append(_r.queue.in_(tuple(queues)))
    return cond


def _percentiles(session: Any, cond: list, group: Any | None, ps: Sequence[float] = (0.5, 0.9)) -> dict:
    """{group value: {p: hours}} over allocated requests' stored hours, interpolated like percentile_cont."""
    dialect = session.get_bind().dialect.name
    key = group if group is not None else sa.literal("all")
    if dialect == "postgresql":
        cols = [sa.func.percentile_cont(p).within_group(_hours.asc()) for p in ps]
        stmt = sa.select(key.label("g"), *cols).where(*cond, _hours.isnot(None))
        if group is not None:
            stmt = stmt.group_by(group)
        return {row[0]: dict(zip(ps, row[1:], strict=True)) for row in session.execute(stmt)}
    # SQLite: number the values within each group, keep only the ranks either side of each percentile.
    over = {"partition_by": group} if group is not None else {}
    inner = (sa.select(key.label("g"), _hours.label("v"),
                       (sa.func.row_number().over(order_by=_hours, **over) - 1).label("rank"),
                       sa.func.count().over(**over).label("n"))
             .where(*cond, _hours.isnot(None)).subquery())
    picks = []
    for p in ps:
        pos = sa.literal(p) * (inner.c.n - 1)
        lo = sa.cast(pos, sa.Integer)
        hi = lo + sa.case((pos > lo, 1), else_=0)
        picks += [inner.c.rank == lo, inner.c.rank == hi]
    rows = session.execute(sa.select(inner.c.g, inner.c.rank, inner.c.v, inner.c.n).where(sa.or_(*picks)))
    found: dict[Any, tuple[int, dict[int, float]]] = {}
    for g, rank, v, n in rows:
        found.setdefault(g, (n, {}))[1][rank] = v
    out: dict[Any, dict[float, float]] = {}
    for g, (n, values) in found.items():
        out[g] = {}
        for p in ps:
            pos = p * (n - 1)
            lo, hi = math.floor(pos), math.ceil(pos)
            out[g][p] = values[lo] + (values[hi] - values[lo]) * (pos - lo)
    return out


def _figures(row: Any, pct: dict[float, float] | None) -> dict[str, Any]:
    received, allocated, within, open_unalloc, breached, declined, asked = (int(x or 0) for x in row)
    pct = pct or {}
    return {
        "received": received, "allocated": allocated, "allocated_within_sla": within,
        "attainment": round(within / allocated, 4) if allocated else None,
        "time_to_allocate_hours": {"p50": _round(pct.get(0.5)), "p90": _round(pct.get(0.9))},
        "open_unallocated": open_unalloc, "breached_open": breached, "declined": declined,
        "needs_info": asked, "needs_info_rate": round(asked / received, 4) if received else None,
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(float(v), 2)


def _counts(now: datetime) -> list:
    return [sa.func.count(), _one(_allocated), _one(sa.and_(_allocated, _within)), _one(_open_unallocated),
            _one(_breached_open(now)), _one(_r.status == "declined"), _one(_asked)]


def _grouped(session: Any, cond: list, group: Any, now: datetime) -> dict[Any, dict[str, Any]]:
    pct = _percentiles(session, cond, group)
    rows = session.execute(sa.select(group, *_counts(now)).where(*cond).group_by(group).order_by(group))
    return {row[0]: _figures(row[1:], pct.get(row[0])) for row in rows}


# ---------------------------------------------------------------- the summary


def compute(session: Any, config: Config, period: Period, *, now: datetime,
            queues: Sequence[str] | None = None) -> dict[str, Any]:
    """The SLA summary of the requests received in `period` (the JSON served at /api/sla/summary)."""
    cond = _in_period(period, queues)
    totals_row = session.execute(sa.select(*_counts(now)).where(*cond)).one()
    totals = _figures(totals_row, _percentiles(session, cond, None).get("all"))
    by_queue = _grouped(session, cond, _r.queue, now)
    by_type = _grouped(session, cond, _r.request_type, now)
    names = {q.key: q.name for q in config.queues}

    # SAs: what they were allocated in the period, and what they hold open now (the load, any period).
    sa_pct = _percentiles(session, [*cond, _r.owner.isnot(None)], _r.owner)
    sa_alloc = dict(session.execute(sa.select(_r.owner, sa.func.count()).where(*cond, _allocated,
                                                                                   _r.owner.isnot(None))
                                    .group_by(_r.owner)).all())
    load_cond = [_active, _r.owner.isnot(None)]
    if queues is not None:
        load_cond.append(_r.queue.in_(tuple(queues)))
    sa_open = dict(session.execute(sa.select(_r.owner, sa.func.count()).where(*load_cond)
                                   .group_by(_r.owner)).all())
    sas = []
    for user in sorted(set(sa_alloc) | set(sa_open)):
        pct = sa_pct.get(user, {})
        sas.append({"slack_user": user, "allocated": int(sa_alloc.get(user, 0)), "open": int(sa_open.get(user, 0)),
                    "time_to_allocate_hours": {"p50": _round(pct.get(0.5)), "p90": _round(pct.get(0.9))}})
    sas.sort(key=lambda s: (-s["open"], -s["allocated"], s["slack_user"]))

    reasons = {k: 0 for k in BREACH_REASON_KINDS}
    for reason, n in session.execute(sa.select(_r.breach_reason, sa.func.count())
                                     .where(*cond, _r.breach_reason.isnot(None)).group_by(_r.breach_reason)):
        reasons[reason] = reasons.get(reason, 0) + int(n)
    missed = sa.or_(sa.and_(_allocated, ~_within), _breached_open(now))
    unrecorded = session.execute(sa.select(sa.func.count()).where(*cond, missed, _r.breach_reason.is_(None))
                                 ).scalar_one()
    return {
        "since": period.since.isoformat(), "until": period.until.isoformat(), "clock": config.sla.clock,
        "timezone": period.tz.key, "period_rule": "received",
        "totals": totals,
        "queues": [{"queue": k, "name": names.get(k, k), **v} for k, v in by_queue.items()],
        "types": [{"request_type": k, **v} for k, v in by_type.items()],
        "sas": sas,
        "breach_reasons": reasons,
        "breach_reasons_unrecorded": int(unrecorded),
    }


@contextmanager
def _reading(engine: Engine) -> Iterator[Any]:
    """A read-only transaction for the summary's queries. On PostgreSQL, JIT compilation is off: the
    planner's cost estimates grow with the table (the correlated subquery is priced per row), and past
    jit_above_cost each of these ~10 ms queries would spend 15-20 ms compiling itself (measured in
    bench/bench_summary.py), so the cost would follow what is stored instead of what is in the period."""
    with read_scope(engine) as s:
        if engine.dialect.name == "postgresql":
            s.execute(sa.text("SET LOCAL jit = off"))
        yield s


def summary(engine: Engine, config: Config, period: Period, *, now: datetime,
            queues: Sequence[str] | None = None) -> dict[str, Any]:
    with _reading(engine) as s:
        return compute(s, config, period, now=now, queues=queues)


def weekly_attainment(engine: Engine, config: Config, *, until: date, weeks: int = 8,
                      queues: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Attainment of the requests received in each of the `weeks` 7-day spans ending on `until`."""
    tz = report_tz(config)
    spans = [Period(until - timedelta(days=7 * (weeks - i) - 1), until - timedelta(days=7 * (weeks - i - 1)), tz)
             for i in range(weeks)]
    whole = Period(spans[0].since, spans[-1].until, tz)
    bucket = sa.case(*[(_r.created_at < p.end, i) for i, p in enumerate(spans)])
    stmt = (sa.select(bucket.label("b"), sa.func.count(), _one(_allocated), _one(sa.and_(_allocated, _within)))
            .where(*_in_period(whole, queues)).group_by(bucket))
    with _reading(engine) as s:
        got = {row[0]: row[1:] for row in s.execute(stmt)}
    out = []
    for i, p in enumerate(spans):
        received, allocated, within = (int(x) for x in got.get(i, (0, 0, 0)))
        out.append({"since": p.since.isoformat(), "until": p.until.isoformat(), "received": received,
                    "allocated": allocated, "allocated_within_sla": within,
                    "attainment": round(within / allocated, 4) if allocated else None})
    return out


def histogram_labels() -> list[str]:
    edges = (0.0, *HISTOGRAM_EDGES)
    labels = [f"{a:g}–{b:g}h" for a, b in itertools.pairwise(edges)]
    return [*labels, f"≥{HISTOGRAM_EDGES[-1]:g}h"]


def time_to_allocate_histogram(engine: Engine, config: Config, period: Period,
                               queues: Sequence[str] | None = None) -> dict[str, list[int]]:
    """Per queue, how many allocated requests took each band of SLA-clock hours."""
    bucket = sa.case(*[(_r.sla_hours_to_allocate < e, i) for i, e in enumerate(HISTOGRAM_EDGES)],
                     else_=len(HISTOGRAM_EDGES))
    stmt = (sa.select(_r.queue, bucket, sa.func.count())
            .where(*_in_period(period, queues), _hours.isnot(None)).group_by(_r.queue, bucket))
    out: dict[str, list[int]] = {}
    with _reading(engine) as s:
        for queue, b, n in s.execute(stmt):
            out.setdefault(queue, [0] * (len(HISTOGRAM_EDGES) + 1))[b] = int(n)
    return dict(sorted(out.items()))


def alignment(engine: Engine, period: Period, queues: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Which SAs work with which AEs: per (AE, SA) pair, the AE's requests the SA holds and the claims
    the SA made on the AE's requests (a claim later handed back still counts), in the period."""
    cond = _in_period(period, queues)
    held = sa.select(_r.requester, _r.owner, sa.func.count()).where(*cond, _r.owner.isnot(None)) \
        .group_by(_r.requester, _r.owner)
    claims = (sa.select(_r.requester, RequestEvent.actor, sa.func.count())
              .join(RequestEvent, RequestEvent.request_id == _r.id)
              .where(*cond, RequestEvent.kind == "claimed", RequestEvent.actor.isnot(None))
              .group_by(_r.requester, RequestEvent.actor))
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    with _reading(engine) as s:
        for ae, sa_user, n in s.execute(held):
            pairs.setdefault((ae, sa_user), {"ae": ae, "sa": sa_user, "requests": 0, "claims": 0})["requests"] = n
        for ae, sa_user, n in s.execute(claims):
            pairs.setdefault((ae, sa_user), {"ae": ae, "sa": sa_user, "requests": 0, "claims": 0})["claims"] = n
    return sorted(pairs.values(), key=lambda p: (-p["requests"], -p["claims"], p["ae"], p["sa"]))


# ---------------------------------------------------------------- lists of requests (now)


def slack_thread_url(channel: str | None, ts: str | None) -> str | None:
    """The card's permalink, built only from the channel id and message ts the app itself stored."""
    if not channel or not ts or not _CHANNEL.match(channel) or not _TS.match(ts):
        return None
    return f"https://slack.com/archives/{channel}/p{ts.replace('.', '')}"


def safe_url(url: str | None) -> str | None:
    """A stored GitLab URL, only if it is a plain http(s) URL (it goes into links)."""
    if not url or not re.fullmatch(r"https?://[^\s<>|\"']+", url):
        return None
    return url


@dataclass(frozen=True)
class RequestLine:
    """One request as the lists show it."""

    id: int
    reference: str
    customer_name: str
    queue: str
    request_type: str
    status: str
    requester: str
    owner: str | None
    expedite: bool
    created_at: datetime
    deadline: datetime
    late: bool
    at_risk: bool
    left: str  # "due in 3h", "2h late", "waiting on the AE"
    slack_url: str | None
    gitlab_url: str | None


_LINE_COLS = (_r.id, _r.customer_name, _r.queue, _r.request_type, _r.status, _r.requester, _r.owner,
              _r.expedite, _r.created_at, _r.deadline, _r.slack_channel, _r.slack_ts, _r.gitlab_url)


def _lines(session: Any, config: Config, stmt: Any, now: datetime) -> list[RequestLine]:
    out = []
    for row in session.execute(stmt):
        (rid, customer, queue_key, rtype, status, requester, owner, expedite, created, deadline, channel, ts,
         url, late) = row
        late = bool(late)
        at_risk = False
        waiting = status == "waiting"
        if not late and owner is None and not waiting and status not in CLOSED_STATUSES:
            queue = config.queue(queue_key)
            if queue is not None:
                try:
                    policy = config.policy(queue.key)
                    cal, target = policy.calendar, policy.amount(rtype, expedite)
                    at_risk = cal.between(now, deadline) <= target * (1 - AT_RISK_FRACTION)
                except (ValueError, RuntimeError):
                    at_risk = False
        if status in CLOSED_STATUSES:
            left = status
        elif owner is not None:
            left = "allocated"
        elif waiting and not late:
            left = "waiting on the AE"
        else:
            left = sla.humanize_left(deadline, now)
        out.append(RequestLine(rid, reference_of(rid), customer, queue_key, rtype, status, requester, owner,
                               bool(expedite), created, deadline, late, at_risk, left,
                               slack_thread_url(channel, ts), safe_url(url)))
    return out


def waiting_requests(engine: Engine, config: Config, *, now: datetime, queues: Sequence[str] | None = None,
                     limit: int = 50) -> list[RequestLine]:
    """Open requests with no SA yet, most urgent first (any period): late and at-risk ones are flagged."""
    cond = [_open_unallocated]
    if queues is not None:
        cond.append(_r.queue.in_(tuple(queues)))
    stmt = (sa.select(*_LINE_COLS, _breached_open(now)).where(*cond)
            .order_by(_r.deadline, _r.id).limit(limit))
    with _reading(engine) as s:
        return _lines(s, config, stmt, now)


def late_and_at_risk(engine: Engine, config: Config, *, now: datetime, queues: Sequence[str] | None = None,
                     limit: int = 20) -> list[RequestLine]:
    return [line for line in waiting_requests(engine, config, now=now, queues=queues, limit=limit * 3)
            if line.late or line.at_risk][:limit]


def open_claims(engine: Engine, config: Config, user: str, *, now: datetime, limit: int = 30) -> list[RequestLine]:
    stmt = (sa.select(*_LINE_COLS, sa.false()).where(_r.owner == user, _active)
            .order_by(_r.allocated_at, _r.id).limit(limit))
    with _reading(engine) as s:
        return _lines(s, config, stmt, now)


def requests_of(engine: Engine, config: Config, requester: str, *, now: datetime,
                limit: int = 20) -> list[RequestLine]:
    stmt = (sa.select(*_LINE_COLS, _breached_open(now)).where(_r.requester == requester)
            .order_by(_r.id.desc()).limit(limit))
    with _reading(engine) as s:
        return _lines(s, config, stmt, now)


def requests_in_period(engine: Engine, config: Config, period: Period, *, now: datetime,
                       queues: Sequence[str] | None = None, limit: int = 200) -> list[RequestLine]:
    stmt = (sa.select(*_LINE_COLS, _breached_open(now)).where(*_in_period(period, queues))
            .order_by(_r.created_at.desc(), _r.id.desc()).limit(limit))
    with _reading(engine) as s:
        return _lines(s, config, stmt, now)


# ---------------------------------------------------------------- CSV rows

CSV_COLUMNS = ("reference", "received_at", "queue", "request_type", "customer_name", "requester", "owner",
               "status", "expedite", "deadline", "allocated_at", "hours_to_allocate", "allocated_within_sla",
               "breached", "breach_reason", "needs_info", "closed_at", "slack_thread", "gitlab_issue")


def csv_rows(engine: Engine, config: Config, period: Period, *, now: datetime,
             queues: Sequence[str] | None = None) -> Iterator[list[Any]]:
    """One row per request received in the period (values, not yet neutralised for spreadsheets),
    streamed from the database in chunks."""
    missed = sa.or_(sa.and_(_allocated, ~_within), _breached_open(now))
    stmt = (sa.select(_r.id, _r.created_at, _r.queue, _r.request_type, _r.customer_name, _r.requester, _r.owner,
                      _r.status, _r.expedite, _r.deadline, _r.allocated_at, _hours,
                      sa.case((_allocated, _within)), missed, _r.breach_reason, _asked, _r.closed_at,
                      _r.slack_channel, _r.slack_ts, _r.gitlab_url)
            .where(*_in_period(period, queues)).order_by(_r.id)
            .execution_options(yield_per=1000))

    def iso(v: datetime | None) -> str:
        return v.astimezone(UTC).isoformat() if v else ""

    with _reading(engine) as s:
        for row in s.execute(stmt):
            (rid, created, queue, rtype, customer, requester, owner, status, expedite, deadline, allocated_at,
             hours, within, breached, reason, asked, closed, channel, ts, url) = row
            yield [reference_of(rid), iso(created), queue, rtype, customer, requester, owner or "", status,
                   "yes" if expedite else "no", iso(deadline), iso(allocated_at),
                   "" if hours is None else f"{hours:.2f}",
                   "" if within is None else ("yes" if within else "no"), "yes" if breached else "no",
                   reason or "", "yes" if asked else "no", iso(closed), slack_thread_url(channel, ts) or "",
                   safe_url(url) or ""]


# ---------------------------------------------------------------- the App Home's content


@dataclass(frozen=True)
class HomeContent:
    """What one person's App Home shows; None parts are not theirs to see."""

    summary: dict[str, Any] | None
    late: list[RequestLine]
    claims: list[RequestLine] | None
    unclaimed: list[RequestLine] | None
    mine: list[RequestLine]


def home_content(engine: Engine, config: Config, user: str, *, sa_queues: Sequence[str], now: datetime,
                 period_form: str = "30d") -> HomeContent:
    """Leaders get the summary and the late and at-risk requests; SAs (members of a queue's SA group, or
    anyone holding a claim) their claims and their queues' unclaimed requests; everyone their own requests."""
    leader = user in config.slack.leaders
    data = summary(engine, config, period_named(period_form, config, now), now=now) if leader else None
    late = late_and_at_risk(engine, config, now=now) if leader else []
    claims = open_claims(engine, config, user, now=now)
    is_sa = bool(sa_queues) or bool(claims)
    unclaimed = waiting_requests(engine, config, now=now, queues=list(sa_queues), limit=20) if sa_queues else []
    return HomeContent(data, late, claims if is_sa else None, unclaimed if is_sa else None,
                       requests_of(engine, config, user, now=now))
