"""Benchmark: the SLA sweep costs what is due, not what is stored.

On PostgreSQL: 10,000 stored requests of which 1,000 have a due SLA check, then 1,000,000 stored
(bulk-inserted with generate_series, with their audit events) and still 1,000 due. Each size times
`triage.services.sla_sweep.sweep()` several times (the same 1,000 checks made due again between runs), prints the
median ratio (target < 1.5), the cost of an idle pass, and EXPLAIN ANALYZE of the sweep's queries
showing the range scan on ix_request_next_check_at.

Run with `python bench/bench_sweep.py` (about two minutes). It creates its own database and drops it
afterwards; point it elsewhere with BENCH_PG_ADMIN_URL (a URL of an existing database on the server,
as a superuser or a role that may CREATE DATABASE).
"""

from __future__ import annotations

import logging
import os
import re
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a plain checkout

from triage.config import parse_config
from triage.db import make_engine
from triage.migrate import upgrade
from triage.models import Request, RequestEvent
from triage.services import sla_sweep

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SMALL, LARGE, DUE = 10_000, 1_000_000, 1_000
REPEATS = 5
CHUNK = 250_000  # rows per INSERT ... SELECT generate_series, to keep each statement's memory modest
BUDGET_SECONDS = 8 * 60

# A Wednesday, 10:00 in New York; the due requests came in at 21:00 the evening before, so on the weekdays
# clock 13h of their 24h SLA have passed: the 50% reminder is due, the 75% one is not.
NOW = datetime(2030, 3, 6, 15, tzinfo=UTC)
DUE_CREATED = NOW - timedelta(hours=13)

CONFIG = parse_config({
    "slack": {"leaders": ["U0LEAD001"], "leaders_channel": "C0LEADERS"},
    "sla": {"clock": "weekdays", "reminders": [0.5, 0.75]},
    "queues": [{"key": "amer-east", "name": "AMER East", "gitlab_project": "sa-triage-boards/amer-east",
                "slack_channel": "C0AMEREAST", "timezone": "America/New_York", "holidays": "US",
                "sa_usergroup": "S0AMEREAST", "engagement": "enterprise"}],  # 24h: the 50% check at +12h
}, source="bench")

# Stored history: one request in 20 is still open and waiting for a later check (next_check_at in the
# future); the rest were allocated and closed long ago (next_check_at NULL), spread over ~3 years.
INSERT_REQUESTS = """
INSERT INTO request (id, submission_key, created_at, updated_at, requester, requester_name, requester_tz,
    request_type, queue, customer_name, expedite, fields, status, owner, allocated_at, closed_at, deadline,
    next_check_at, gitlab_project, gitlab_iid, gitlab_url, slack_channel, slack_ts)
SELECT g, 'bench-' || g, c, c, 'U0AE00001', 'Alex Account', 'America/Los_Angeles', 'opportunity', 'amer-east',
    'Customer ' || g, false, '{"asks": ["demo"], "pain": "Pipelines are hand-built and nobody trusts them."}'::json,
    CASE WHEN is_open THEN 'open' ELSE 'done' END,
    CASE WHEN is_open THEN NULL ELSE 'U0SA00001' END,
    CASE WHEN is_open THEN NULL ELSE c + interval '5 hours' END,
    CASE WHEN is_open THEN NULL ELSE c + interval '9 days' END,
    c + interval '24 hours',
    CASE WHEN is_open THEN %(now)s + (g %% 600) * interval '1 minute' + interval '1 minute' ELSE NULL END,
    'sa-triage-boards/amer-east', g, 'https://gitlab.example.com/sa-triage-boards/amer-east/-/issues/' || g,
    'C0AMEREAST', '1700000000.' || lpad(g::text, 6, '0')
FROM (SELECT g, g %% 20 = 0 AS is_open,
             CASE WHEN g %% 20 = 0 THEN %(now)s - (g %% 600) * interval '1 minute'
                  ELSE %(now)s - interval '3 days' - (g %% 1000000) * interval '90 seconds' END AS c
      FROM generate_series(%(lo)s::int, %(hi)s::int) AS g) AS s
"""

# The due requests: open, their clock started at DUE_CREATED, their check due a minute ago.
INSERT_DUE = """
INSERT INTO request (id, submission_key, created_at, updated_at, requester, requester_name, requester_tz,
    request_type, queue, customer_name, expedite, fields, status, deadline, next_check_at, gitlab_project,
    gitlab_iid, gitlab_url, slack_channel, slack_ts)
SELECT g, 'bench-' || g, %(created)s, %(created)s, 'U0AE00001', 'Alex Account', 'America/Los_Angeles',
    'opportunity', 'amer-east', 'Customer ' || g, false, '{"asks": ["demo"]}'::json, 'open', %(deadline)s, %(due_at)s,
    'sa-triage-boards/amer-east', g, 'https://gitlab.example.com/sa-triage-boards/amer-east/-/issues/' || g,
    'C0AMEREAST', '1700000000.' || lpad(g::text, 6, '0')
FROM generate_series(1, %(n)s::int) AS g
"""

# Audit trail as the app writes it: submitted + sla_start for every request, sla_stop once allocated.
INSERT_EVENTS = """
INSERT INTO request_event (request_id, at, actor, source, kind, detail)
SELECT r.id, r.created_at, 'U0AE00001', 'slack', 'submitted', '{}'::json FROM request r
    WHERE r.id BETWEEN %(lo)s AND %(hi)s
UNION ALL
SELECT r.id, r.created_at, NULL, 'system', 'sla_start', '{}'::json FROM request r WHERE r.id BETWEEN %(lo)s AND %(hi)s
UNION ALL
SELECT r.id, r.allocated_at, NULL, 'system', 'sla_stop', '{"late": false}'::json FROM request r
    WHERE r.id BETWEEN %(lo)s AND %(hi)s AND r.allocated_at IS NOT NULL
"""


def log(msg: str) -> None:
    print(msg, flush=True)


def bulk(engine: sa.Engine, lo: int, hi: int) -> None:
    with engine.begin() as conn:
        for a in range(lo, hi + 1, CHUNK):
            b = min(hi, a + CHUNK - 1)
            conn.exec_driver_sql(INSERT_REQUESTS, {"lo": a, "hi": b, "now": NOW})
            conn.exec_driver_sql(INSERT_EVENTS, {"lo": a, "hi": b})
        conn.exec_driver_sql("SELECT setval('request_id_seq', (SELECT max(id) FROM request))")


def vacuum(engine: sa.Engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in ("request", "request_event", "outbox"):
            conn.exec_driver_sql(f"VACUUM ANALYZE {table}")


def make_due_again(engine: sa.Engine) -> None:
    """Undo what the last sweep did, so every run does the same 1,000 reminders."""
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM outbox")
        conn.exec_driver_sql("DELETE FROM request_event WHERE kind IN ('reminder_sent', 'breach_escalated')")
        conn.exec_driver_sql("UPDATE request SET next_check_at = %(due_at)s WHERE id <= %(n)s",
                             {"due_at": NOW - timedelta(minutes=1), "n": DUE})
    vacuum(engine)


def counts(engine: sa.Engine) -> tuple[int, int, int]:
    """(requests, events, due checks) stored."""
    with engine.connect() as conn:
        n_req = conn.execute(sa.select(sa.func.count()).select_from(Request)).scalar_one()
        n_ev = conn.execute(sa.select(sa.func.count()).select_from(RequestEvent)).scalar_one()
        n_due = conn.execute(sa.select(sa.func.count()).select_from(Request)
                             .where(Request.next_check_at <= NOW)).scalar_one()
    return n_req, n_ev, n_due


def time_sweeps(engine: sa.Engine) -> list[float]:
    times = []
    for _ in range(REPEATS):
        make_due_again(engine)
        started = time.perf_counter()
        report = sla_sweep.sweep(engine, CONFIG, now=NOW)
        times.append(time.perf_counter() - started)
        assert (report.checked, report.reminders, report.more) == (DUE, DUE, False), report
    return times


def time_idle(engine: sa.Engine) -> float:
    """A pass with nothing due: what every worker pays every few seconds."""
    sla_sweep.sweep(engine, CONFIG, now=NOW)
    runs = []
    for _ in range(20):
        started = time.perf_counter()
        report = sla_sweep.sweep(engine, CONFIG, now=NOW)
        runs.append(time.perf_counter() - started)
        assert report.checked == 0
    return statistics.median(runs)


def explain(engine: sa.Engine) -> str:
    """EXPLAIN ANALYZE of the sweep's two reads, in a transaction rolled back (FOR UPDATE takes locks)."""
    make_due_again(engine)
    due = sla_sweep.due_query(NOW, 500, dialect="postgresql")
    compiled = due.compile(dialect=postgresql.dialect())
    out = []
    with engine.connect() as conn, conn.begin() as tx:
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + compiled.string,
                                    compiled.params).scalars().all()
        out += ["-- due requests (one batch)", *plan]
        ev = sla_sweep.events_query(list(range(1, 501))).compile(
            dialect=postgresql.dialect(), compile_kwargs={"render_postcompile": True})
        plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + ev.string, ev.params).scalars().all()
        # The 500 ids of the IN list, shortened for reading.
        out += ["-- their clock events", *(re.sub(r"'\{(\d+),[\d,]*,(\d+)\}'", r"'{\1,...,\2}'", line)
                                           for line in plan)]
        tx.rollback()
    return "\n".join(out)


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    wall = time.perf_counter()
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"bench_sweep_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    engine = make_engine(url)
    try:
        upgrade(url)
        due_deadline = CONFIG.policy("amer-east").deadline("opportunity", False, DUE_CREATED)
        with engine.begin() as conn:
            conn.exec_driver_sql(INSERT_DUE, {"created": DUE_CREATED, "deadline": due_deadline,
                                              "due_at": NOW - timedelta(minutes=1), "n": DUE})
            conn.exec_driver_sql(INSERT_EVENTS, {"lo": 1, "hi": DUE})
        bulk(engine, DUE + 1, SMALL)
        vacuum(engine)
        small_counts = counts(engine)
        assert small_counts[0] == SMALL and small_counts[2] == DUE, small_counts
        sla_sweep.sweep(engine, CONFIG, now=NOW)  # warm-up: connections, holiday tables, day windows
        small = time_sweeps(engine)
        small_idle = time_idle(engine)
        log(f"{SMALL:,} stored: sweeps {', '.join(f'{t:.3f}' for t in small)} s")

        started = time.perf_counter()
        bulk(engine, SMALL + 1, LARGE)
        vacuum(engine)
        load = time.perf_counter() - started
        n_req, n_ev, _ = counts(engine)
        log(f"grew to {n_req:,} requests and {n_ev:,} events in {load:.0f} s")
        large = time_sweeps(engine)
        large_idle = time_idle(engine)
        log(f"{LARGE:,} stored: sweeps {', '.join(f'{t:.3f}' for t in large)} s")
        plan = explain(engine)

        m_small, m_large = statistics.median(small), statistics.median(large)
        ratio = m_large / m_small
        print()
        print("| stored requests | audit events | due checks | sweep median (s) | min (s) | per due check (ms) "
              "| idle pass (ms) |")
        print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        print(f"| {SMALL:,} | {small_counts[1]:,} | {DUE:,} | {m_small:.3f} | "
              f"{min(small):.3f} | {m_small / DUE * 1000:.2f} | {small_idle * 1000:.1f} |")
        print(f"| {n_req:,} | {n_ev:,} | {DUE:,} | {m_large:.3f} | {min(large):.3f} | {m_large / DUE * 1000:.2f} | "
              f"{large_idle * 1000:.1f} |")
        print()
        verdict = "meets" if ratio < 1.5 else "MISSES"
        print(f"ratio 1M / 10k = {ratio:.2f} ({verdict} the < 1.5 target); medians of {REPEATS} runs, "
              f"each sending {DUE:,} reminders (thread + card refresh = {2 * DUE:,} outbox entries)")
        print()
        print(plan)
        uses_index = "ix_request_next_check_at" in plan
        print()
        print(f"ix_request_next_check_at used: {uses_index}; total run {time.perf_counter() - wall:.0f} s "
              f"(budget {BUDGET_SECONDS} s)")
        return 0 if ratio < 1.5 and uses_index else 1
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
