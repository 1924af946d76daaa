#!/usr/bin/env python
"""Outbox drain rate: how fast `triage worker` processes deliver a backlog, one worker against two.

The Procfile's processes for real (tests/scale/cluster.py): two `web` processes
(TRIAGE_EMBEDDED_WORKER=false triage serve) on a fresh PostgreSQL database, the fake GitLab and Slack servers
in this process. --n signed submissions are stored with no worker running (the backlog: a create_issue per
request, which enqueues the card, which enqueues the DM), then --workers `triage worker` processes start
and the clock runs until every issue, card and DM exists. Runs each worker count in turn on its own
database, the same backlog size, so the ratio is same-run.

  .venv/bin/python bench/bench_drain.py --n 1000 --workers 1,2

Loopback only; creates and drops its databases on TRIAGE_TEST_POSTGRES_URL's server; stops what it started.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.conftest import BOT_TOKEN, GITLAB_TOKEN, PG_URL  # noqa: E402
from tests.fakes.gitlab_api import FakeGitLab  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.scale.cluster import Balancer, Cluster, Layout, landed, open_modal, send_burst  # noqa: E402


def one(n: int, workers: int, admin: sa.Engine) -> dict:
    name = f"bench_drain_{uuid.uuid4().hex[:8]}"
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    layout = Layout()
    tmp = Path(tempfile.mkdtemp(prefix="triage-drain-"))
    (tmp / "scale.toml").write_text(layout.toml())
    try:
        with FakeSlack(token=BOT_TOKEN) as slack, FakeGitLab(token=GITLAB_TOKEN) as gitlab:
            layout.seed(slack, gitlab)
            with Cluster(database_url=url, config_path=tmp / "scale.toml", slack=slack, gitlab=gitlab,
                         log_dir=tmp, workers=workers, start_workers=False) as cluster:
                view = open_modal(cluster, slack, layout.ae(0))
                t0 = time.monotonic()
                outcomes = send_burst(Balancer([cluster.url(w) for w in cluster.webs]), view, layout, n,
                                      concurrency=16)
                stored = time.monotonic() - t0
                assert all(o.acked for o in outcomes)
                t1 = time.monotonic()
                for w in cluster.workers:
                    w.start()
                while not landed(url, slack, gitlab, layout).complete(n):
                    if time.monotonic() - t1 > 60 + n:
                        raise SystemExit("drain did not finish\n" + cluster.logs())
                    time.sleep(0.2)
                drained = time.monotonic() - t1
        return {"workers": workers, "n": n, "store_s": stored, "drain_s": drained,
                "requests_per_s": n / drained, "entries_per_s": 3 * n / drained}
    finally:
        with admin.connect() as c:
            c.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--workers", default="1,2")
    a = ap.parse_args()
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    rows = [one(a.n, int(w), admin) for w in a.workers.split(",")]
    print("| workers | backlog (requests / outbox entries) | stored in s | drained in s | requests/s | "
          "entries/s |\n|---:|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['workers']} | {r['n']} / {3 * r['n']} | {r['store_s']:.1f} | {r['drain_s']:.1f} | "
              f"{r['requests_per_s']:.1f} | {r['entries_per_s']:.1f} |")
    if len(rows) > 1:
        print(f"ratio {rows[-1]['workers']} workers / {rows[0]['workers']}: "
              f"{rows[-1]['entries_per_s'] / rows[0]['entries_per_s']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
