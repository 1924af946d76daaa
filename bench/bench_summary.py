"""Benchmark: the leaders' summary costs what is in the period, not what is stored.

On PostgreSQL: 10,000 requests received in the last 30 days (with their needs-info events), timed; then
990,000 older requests (and their events) are added with INSERT ... SELECT generate_series, so 1,000,000
are stored and the same 10,000 are in the window, timed again. Prints the medians and their ratio
(target < 1.5), the dashboard page's p50/p95 over HTTP with 1,000,000 stored, and the App Home for a
leader: `app_home_opened` events posted signed to /slack/events, 8 at a time, timed until the fake
Slack has received each `views.publish`.

    .venv/bin/python bench/bench_summary.py            # about two minutes

Creates its own database and drops it; BENCH_PG_ADMIN_URL points at another server's admin database.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a plain checkout

from tests.conftest import BOT_TOKEN, CONFIG_TOML, LEADER, SIGNING_SECRET, make_settings, sign
from tests.fakes.slack_api import FakeSlack
from triage.db import make_engine
from triage.migrate import upgrade
from triage.services import summary as sm
from triage.web.auth import SESSION_COOKIE, Auth

ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
WINDOW, LARGE = 10_000, 1_000_000
REPEATS = 10
CHUNK = 250_000

_INSERT = """
INSERT INTO request (submission_key, created_at, updated_at, requester, requester_name, requester_tz, request_type,
                     queue, customer_name, opportunity_id, expedite, fields, status, owner, allocated_at, closed_at,
                     deadline, breach_reason, sla_hours_to_allocate, allocated_within_sla, gitlab_project,
                     slack_channel, slack_ts, gitlab_url, needs_info_at)
SELECT :prefix || g, ts, ts, 'U0AE' || lpad((g % 60)::text, 5, '0'), '', 'UTC',
       (ARRAY['opportunity','follow_up','security_assessment','event'])[1 + g % 4],
       (ARRAY['amer-east','emea'])[1 + g % 2], 'Customer ' || g, NULL, g % 10 = 0, '{}'::json,
       CASE WHEN g % 20 = 0 THEN 'open' WHEN g % 25 = 0 THEN 'declined' WHEN g % 3 = 0 THEN 'done' ELSE 'claimed' END,
       CASE WHEN g % 20 = 0 OR g % 25 = 0 THEN NULL ELSE 'U0SA' || lpad((g % 12)::text, 5, '0') END,
       CASE WHEN g % 20 = 0 OR g % 25 = 0 THEN NULL ELSE ts + (g % 40) * interval '1 hour' END,
       CASE WHEN g % 25 = 0 THEN ts + interval '2 hours' END,
       ts + interval '24 hours',
       CASE WHEN g % 40 = 1 THEN (ARRAY['capacity','no_context','late_triage','other'])[1 + g % 4] END,
       CASE WHEN g % 20 = 0 OR g % 25 = 0 THEN NULL ELSE (g % 40)::float END,
       CASE WHEN g % 20 = 0 OR g % 25 = 0 THEN NULL ELSE g % 40 <= 24 END,
       'sa-triage-boards/amer-east', 'C0AMEREAST', (extract(epoch FROM ts)::bigint)::text || '.000100',
       'https://gitlab.example.com/sa-triage-boards/amer-east/-/issues/' || g,
       CASE WHEN g % 8 = 0 THEN ts + interval '1 hour' END
FROM (SELECT g, CAST(:start AS timestamptz) + g * CAST(:step AS interval) AS ts
      FROM generate_series(CAST(:lo AS int), CAST(:hi AS int)) AS g) AS s
"""
# Requests older than the window are closed, as old requests are (one in a thousand still open or held).
_CLOSE_OLD = """
UPDATE request SET status = CASE WHEN id % 25 = 0 THEN 'declined' ELSE 'done' END,
                   closed_at = created_at + interval '3 days'
WHERE id > :after AND id % 1000 <> 7 AND status NOT IN ('done', 'declined')
"""
_EVENTS = """
INSERT INTO request_event (request_id, at, actor, source, kind, detail)
SELECT id, created_at + interval '1 hour', 'U0SA00001', 'slack', 'needs_info', '{}'::json
FROM request WHERE id > :after AND id % 8 = 0
"""


def seed(engine, *, prefix: str, n: int, start: datetime, step: timedelta, close: bool = False) -> None:
    with engine.begin() as c:
        after = c.execute(sa.text("SELECT coalesce(max(id), 0) FROM request")).scalar_one()
        for lo in range(1, n + 1, CHUNK):
            c.execute(sa.text(_INSERT), {"prefix": prefix, "start": start, "step": step, "lo": lo,
                                         "hi": min(n, lo + CHUNK - 1)})
        c.execute(sa.text(_EVENTS), {"after": after})
        if close:
            c.execute(sa.text(_CLOSE_OLD), {"after": after})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
        c.execute(sa.text("VACUUM ANALYZE"))  # as autovacuum would have: statistics and the visibility map


def time_summary(engine, config, period, now) -> float:
    t = time.perf_counter()
    data = sm.summary(engine, config, period, now=now)
    elapsed = time.perf_counter() - t
    assert data["totals"]["received"] == WINDOW, data["totals"]
    return elapsed


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(p * (len(values) - 1)))]


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    names = [f"bench_summary_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    tmp = tempfile.TemporaryDirectory()
    config_path = Path(tmp.name) / "triage.toml"
    config_path.write_text(CONFIG_TOML)
    engines = []
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        urls = []
        for name in names:
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            urls.append(ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
        settings = make_settings(DATABASE_URL=urls[1], TRIAGE_CONFIG=str(config_path), TRIAGE_EMBEDDED_WORKER=False)
        config = settings.config
        period = sm.period_named("30d", config, now)
        t = time.perf_counter()
        for url in urls:
            upgrade(url)
            engines.append(make_engine(url))
        # The second holds 990,000 older requests, from the three years before the window, closed as old
        # requests are; they are inserted first, so that (as in production) the newest have the highest ids.
        seed(engines[1], prefix="o", n=LARGE - WINDOW, start=period.start - timedelta(days=3 * 365),
             step=timedelta(days=3 * 365 - 1) / (LARGE - WINDOW), close=True)
        for e in engines:  # the same 10,000 received inside the window in both, the first an hour after it opens
            seed(e, prefix="w", n=WINDOW, start=period.start + timedelta(hours=1),
                 step=(now - period.start - timedelta(hours=2)) / WINDOW)
        seeded_s = time.perf_counter() - t
        small, large = [], []
        for _ in range(2):  # warm caches and plans
            for e in engines:
                time_summary(e, config, period, now)
        for i in range(REPEATS):  # ABBA: the machine's load drifts; alternating cancels it
            order = (0, 1) if i % 2 == 0 else (1, 0)
            for j in order:
                (small if j == 0 else large).append(time_summary(engines[j], config, period, now))
        with engines[1].connect() as c:
            stored = c.execute(sa.text("SELECT count(*) FROM request")).scalar_one()
        ratio = statistics.median(large) / statistics.median(small)
        print(f"summary, 30-day window, {WINDOW:,} in it, {REPEATS} alternating runs: {WINDOW:,} stored median "
              f"{statistics.median(small) * 1000:.1f} ms; {stored:,} stored median "
              f"{statistics.median(large) * 1000:.1f} ms; ratio {ratio:.2f} (seeding took {seeded_s:.0f} s)")
        if os.environ.get("BENCH_EXPLAIN"):
            for e in engines:
                explain(e, config, period, now)
        if not os.environ.get("BENCH_SUMMARY_ONLY"):
            web(settings, urls[1], config_path)
    finally:
        for e in engines:
            e.dispose()
        for name in names:
            with admin.connect() as c:
                c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                          {"n": name})
                c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
        tmp.cleanup()


def explain(engine, config, period, now) -> None:
    """EXPLAIN ANALYZE of every statement summary() runs (BENCH_EXPLAIN=1)."""
    statements = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        statements.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", capture)
    sm.summary(engine, config, period, now=now)
    sa.event.remove(engine, "before_cursor_execute", capture)
    with engine.connect() as c:
        c.execute(sa.text("SET jit = off"))  # as summary() runs them
        for statement, parameters in statements:
            if not statement.lstrip().upper().startswith("SELECT"):
                continue
            plan = c.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).scalars().all()
            if os.environ.get("BENCH_EXPLAIN") == "full":
                print(statement[:300], "\n".join(plan), "\n")
            else:
                print(statement[:60].replace("\n", " "), [p for p in plan if "Execution Time" in p])


def web(settings, url: str, config_path: Path) -> None:
    """The dashboard page over HTTP, and the App Home for a leader, with 1,000,000 stored."""
    import httpx

    from tests.leaders.browser import serve
    from triage.web import create_app

    secret = uuid.uuid4().hex
    with FakeSlack(token=BOT_TOKEN) as fake:
        fake.add_user(LEADER, name="lee", real_name="Lee Leader")
        s = make_settings(DATABASE_URL=url, TRIAGE_CONFIG=str(config_path), TRIAGE_EMBEDDED_WORKER=False,
                          TRIAGE_SESSION_SECRET=secret, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET,
                          SLACK_API_URL=fake.url)
        cookie = Auth(s).session_value(user=LEADER, name="Lee", team="T0001")
        app = create_app(s, migrate=False, worker=False)
        with serve(app) as base, httpx.Client(base_url=base, cookies={SESSION_COOKIE: cookie}, timeout=60) as client:
            assert client.get("/dashboard").status_code == 200
            times = []
            for _ in range(20):
                t = time.perf_counter()
                r = client.get("/dashboard", params={"period": "30d"})
                times.append(time.perf_counter() - t)
                assert r.status_code == 200 and "Per queue" in r.text
            print(f"dashboard page, 30d, 1,000,000 stored, 20 sequential GETs: p50 {pct(times, 0.5) * 1000:.0f} ms, "
                  f"p95 {pct(times, 0.95) * 1000:.0f} ms")

            def post(i: int) -> float:
                body = json.dumps({"type": "event_callback", "team_id": "T0001", "api_app_id": "A0TRIAGE",
                                   "event_id": f"Ev{i}", "event_time": int(time.time()),
                                   "event": {"type": "app_home_opened", "user": LEADER, "tab": "home",
                                             "channel": "D0LEAD", "event_ts": f"{time.time():.6f}"}}).encode()
                t = time.perf_counter()
                r = client.post("/slack/events", content=body,
                                headers={"Content-Type": "application/json", **sign(body)})
                assert r.status_code == 200
                return time.perf_counter() - t

            def published(n: int) -> None:
                while len(fake.calls_to("views.publish")) < n:
                    time.sleep(0.002)

            alone = []
            for i in range(8):  # one at a time: open to publish
                t = time.perf_counter()
                post(i)
                published(i + 1)
                alone.append(time.perf_counter() - t)
            burst = 40
            t = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                acks = list(pool.map(post, range(100, 100 + burst)))
            published(8 + burst)
            total = time.perf_counter() - t
            print(f"App Home for a leader, 1,000,000 stored: one open -> views.publish p50 "
                  f"{pct(alone, 0.5) * 1000:.0f} ms (max {max(alone) * 1000:.0f} ms); a burst of {burst} opens "
                  f"8 at a time: ack p95 {pct(acks, 0.95) * 1000:.0f} ms, all {burst} published in {total:.1f} s "
                  f"({total / burst * 1000:.0f} ms each)")


if __name__ == "__main__":
    main()
