#!/usr/bin/env python
"""Submission -> GitLab issue: how long after the AE presses Submit the issue exists on GitLab.

Starts the fake GitLab (tests/fakes/gitlab_api.py, every answer delayed by --gitlab-delay, 0.1 s by default)
and the fake Slack Web API (tests/fakes/slack_api.py) in this process, runs the app as
`uvicorn triage.web:app` in a subprocess with the embedded worker on (TRIAGE_EMBEDDED_WORKER=true) and a
fresh SQLite (or PostgreSQL) database, sends --n correctly signed, valid and distinct `sa_request_modal`
submissions, and measures for each the time from sending it to its issue's `created_at` on the fake GitLab
(the moment GitLab applied the POST; the app learns the iid --gitlab-delay later).

Load: --rate 0 (default) is closed-loop: --concurrency connections each send the next submission as soon
as the previous one is acknowledged (a burst: N submissions arrive within a second or two). --rate R sends
R submissions per second on a fixed schedule (open loop, still at most --concurrency in flight).

  .venv/bin/python bench/bench_intake.py                      # N=200, burst at concurrency 4
  .venv/bin/python bench/bench_intake.py --rate 2 --n 120     # a steady 2 submissions/s
  .venv/bin/python bench/bench_intake.py --db postgres        # createdb/dropdb on 127.0.0.1:5432

Prints ack latency and submission-to-issue p50/p95/max, plus how fast the worker drained the backlog.
Loopback only; stops by itself (--max-seconds); kills only the app process group it started.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ack_compare import QUEUE, create_database, drop_database, opportunity_id, product_values  # noqa: E402

from tests.fakes.gitlab_api import FakeGitLab  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402

CONFIG = REPO / "bench" / "bench.toml"
PROJECT = "sa-triage-boards/bench"
CHANNEL = "C0BENCHQ"
SECRET = "bench-intake-secret"  # noqa: S105 - signs requests to the loopback app only
USERS = [f"U0INTAKE{i:02d}" for i in range(20)]
WARMUP = 3


def pct(vals: list[float], q: float) -> float | None:
    if not vals:
        return None
    s = sorted(vals)
    return s[min(len(s) - 1, max(0, math.ceil(q * len(s)) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def customer(i: int) -> str:
    return f"Intake-{i:05d}"


def submission_body(i: int, blocks: list, run: str) -> str:
    now = time.time()
    vid = f"VIN{run}{i:06d}"
    view = {"id": vid, "team_id": "T0BENCH01", "type": "modal", "callback_id": "sa_request_modal",
            "private_metadata": "", "title": {"type": "plain_text", "text": "SA request"},
            "blocks": blocks, "state": {"values": product_values(opportunity=opportunity_id(900_000 + i),
                                                                 customer=customer(i))},
            "hash": f"{int(now)}.{i:08x}", "root_view_id": vid, "previous_view_id": None,
            "app_id": "A0BENCHAPP", "bot_id": "B0BOT0001", "external_id": "", "clear_on_close": False,
            "notify_on_close": False}
    user = USERS[i % len(USERS)]
    payload = {"type": "view_submission", "team": {"id": "T0BENCH01", "domain": "bench"},
               "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": "T0BENCH01"},
               "api_app_id": "A0BENCHAPP", "token": "x", "trigger_id": f"{i}.{int(now * 1e6)}.{uuid.uuid4().hex}",
               "view": view, "response_urls": [], "is_enterprise_install": False, "enterprise": None}
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


def signed_headers(body: str) -> dict[str, str]:
    ts = str(int(time.time()))
    sig = "v0=" + hmac.new(SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": sig}


async def send_all(url: str, indices: list[int], blocks: list, run: str, *, concurrency: int, rate: float,
                    deadline: float) -> dict[int, dict]:
    import httpx

    sent: dict[int, dict] = {}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in indices:
        queue.put_nowait(i)
    t0 = time.time()

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty() and time.time() < deadline:
            i = queue.get_nowait()
            if rate > 0:  # open loop: submission k goes out at t0 + k / rate
                k = indices.index(i)
                await asyncio.sleep(max(0.0, t0 + k / rate - time.time()))
            body = submission_body(i, blocks, run)
            t_send = time.time()
            try:
                r = await client.post(url, content=body, headers=signed_headers(body), timeout=10)
                ok = r.status_code == 200 and "Request saved" in r.text
                sent[i] = {"t_send": t_send, "ack_ms": (time.time() - t_send) * 1000, "ok": ok,
                           "status": r.status_code, "body": r.text[:300] if not ok else ""}
            except httpx.HTTPError as e:
                sent[i] = {"t_send": t_send, "ack_ms": None, "ok": False, "status": None, "body": repr(e)}

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
    return sent


def issue_times(gl: FakeGitLab) -> dict[int, float]:
    """customer index -> issue created_at (epoch seconds) for every issue on the bench project."""
    out = {}
    for issue in gl.issues(PROJECT):
        title = issue.get("title") or ""
        if "Intake-" in title:
            i = int(title.split("Intake-", 1)[1][:5])
            out[i] = datetime.fromisoformat(issue["created_at"].replace("Z", "+00:00")).timestamp()
    return out


def wait_issues(gl: FakeGitLab, want: set[int], deadline: float) -> dict[int, float]:
    seen: dict[int, float] = {}
    while time.time() < deadline:
        seen = issue_times(gl)
        if want <= seen.keys():
            break
        time.sleep(0.05)
    return seen


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rate", type=float, default=0.0, help="submissions per second (0: closed loop)")
    ap.add_argument("--gitlab-delay", type=float, default=0.1, help="seconds the fake GitLab takes to answer")
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--max-seconds", type=float, default=240.0, help="hard cap for the whole run")
    ap.add_argument("--app-dir", default=str(REPO), help="run the app from this checkout")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (app log, database)")
    a = ap.parse_args(argv)
    t_start = time.time()
    hard_deadline = t_start + a.max_seconds

    tmp = Path(tempfile.mkdtemp(prefix="triage-intake-"))
    gl = FakeGitLab(token="glpat-bench").start()  # noqa: S106 - in-process fake
    gl.add_project(PROJECT)
    gl.set_delay(a.gitlab_delay)
    sl = FakeSlack(token="xoxb-bench").start()  # noqa: S106 - in-process fake
    sl.add_channel(CHANNEL, name="bench-queue")
    for u in USERS:
        sl.add_user(u, real_name=f"AE {u[-2:]}", email=f"{u.lower()}@example.com")

    db_url, pg_db = create_database(a.db, tmp, "bench_intake")

    port = free_port()
    env = dict(os.environ, DATABASE_URL=db_url, TRIAGE_CONFIG=str(CONFIG), TRIAGE_EMBEDDED_WORKER="true",
               SLACK_API_URL=sl.url, SLACK_BOT_TOKEN=sl.token, SLACK_SIGNING_SECRET=SECRET,
               GITLAB_URL=gl.url, GITLAB_TOKEN=gl.token)
    env.pop("SLACK_APP_TOKEN", None)
    log_path = tmp / "app.log"
    uvicorn = str(Path(sys.executable).parent / "uvicorn")
    log_file = open(log_path, "w")  # noqa: SIM115 - open for the app's whole life, closed in finally
    app = subprocess.Popen([uvicorn, "triage.web:app", "--host", "127.0.0.1", "--port", str(port),  # noqa: S603
                            "--log-level", "warning", "--no-access-log"],
                           cwd=a.app_dir, env=env, stdout=log_file, stderr=subprocess.STDOUT,
                           start_new_session=True)
    rc = 1
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            if app.poll() is not None:
                raise SystemExit(f"the app exited early; see {log_path}:\n" + log_path.read_text()[-3000:])
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as r:  # noqa: S310 - loopback http
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("the app did not become ready")

        from blocks.request_modal import request_modal

        blocks = request_modal(request_type="opportunity", queues=[(QUEUE, "Bench queue")], initial={},
                               private_metadata="")["blocks"]
        run = uuid.uuid4().hex[:4]
        url = base + "/slack/events"

        # warm-up: a few submissions through the whole path (first GitLab/Slack connections, imports)
        warm = list(range(WARMUP))
        sent_w = asyncio.run(send_all(url, warm, blocks, run, concurrency=1, rate=0, deadline=hard_deadline))
        bad = [v for v in sent_w.values() if not v["ok"]]
        if bad:
            raise SystemExit(f"warm-up submission refused: {bad[0]}")
        wait_issues(gl, set(warm), min(hard_deadline, time.time() + 30))

        indices = list(range(WARMUP, WARMUP + a.n))
        t0 = time.time()
        sent = asyncio.run(send_all(url, indices, blocks, run, concurrency=a.concurrency, rate=a.rate,
                                    deadline=hard_deadline))
        t_sent = time.time()
        ok = {i for i, v in sent.items() if v["ok"]}
        seen = wait_issues(gl, ok, hard_deadline)
        t_done = time.time()

        lat = [(seen[i] - sent[i]["t_send"]) * 1000 for i in ok if i in seen]
        acks = [v["ack_ms"] for v in sent.values() if v["ack_ms"] is not None]
        missing = len(ok - seen.keys())
        first = min((seen[i] for i in ok if i in seen), default=None)
        last = max((seen[i] for i in ok if i in seen), default=None)
        cards = len([m for m in sl.messages if m.get("channel") == CHANNEL and not m.get("thread_ts")])
        print(f"# bench_intake: n={a.n} concurrency={a.concurrency} rate={a.rate or 'closed loop'} "
              f"gitlab_delay={a.gitlab_delay}s db={a.db} app={a.app_dir}")
        print(f"sent {len(sent)} in {t_sent - t0:.2f}s ({len(sent) / max(t_sent - t0, 1e-9):.1f}/s), "
              f"acknowledged as saved {len(ok)}, refused {len(sent) - len(ok)}")
        if len(ok) < len(sent):
            print("  first refusal:", next(v for v in sent.values() if not v["ok"]))
        print(f"ack ms            p50 {fmt(pct(acks, .5))}  p95 {fmt(pct(acks, .95))}  "
              f"max {fmt(max(acks, default=None))}")
        print(f"submit->issue ms  p50 {fmt(pct(lat, .5))}  p95 {fmt(pct(lat, .95))}  "
              f"max {fmt(max(lat, default=None))}   (n={len(lat)}, missing after cap: {missing})")
        if first and last and len(lat) > 1:
            print(f"issues created from {first - t0:.2f}s to {last - t0:.2f}s after the first send: "
                  f"{(len(lat) - 1) / max(last - first, 1e-9):.1f} issues/s while draining")
        print(f"cards posted in the queue channel: {cards} (incl. {WARMUP} warm-up); "
              f"waited {t_done - t_sent:.1f}s after the last send")
        rc = 0 if not missing and len(ok) == len(sent) else 1
    finally:
        if app.poll() is None:
            os.killpg(app.pid, signal.SIGTERM)  # the session this script created for the app
            try:
                app.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(app.pid, signal.SIGKILL)
                app.wait()
        log_file.close()
        gl.stop()
        sl.stop()
        drop_database(pg_db)
        errors = [ln for ln in log_path.read_text().splitlines() if "Traceback" in ln or "ERROR" in ln]
        if errors:
            print(f"app log has {len(errors)} error lines; first: {errors[0][:200]}  (log: {log_path})")
        if a.keep or rc:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
