#!/usr/bin/env python
"""CPU per acknowledged view_submission, the app vs the bare async Bolt baseline, in one process.

Both ASGI apps are called directly (no uvicorn, no sockets, no load generator), alternating app and
baseline in ABBA blocks of 50, and `time.process_time()` (every thread of the process) is read around
each request (around each block with `--concurrency` above 1, requests in flight at once), so the figure
is the CPU each app spends from the first byte of the body to the last byte of its answer, including the
app's storing thread. The bodies are the load harness's signed view_submission payloads (its `load.py`),
with the app's own modal and a valid, distinct state per submission (`bench/ack_compare.py`'s), so every
one is validated, checked for duplicates and stored. uvicorn's HTTP parsing and the app's access log
(LOG_LEVEL=WARNING here) are left out for both; `ack_compare.py` measures with them.

  TRIAGE_BENCH_HARNESS=/path/to/harness .venv/bin/python bench/profile_ack.py --requests 1000
  ... --db postgres                     # PostgreSQL instead of SQLite
  ... --concurrency 8                   # 8 requests in flight, as the harness's c = 8
  ... --profile prof.out                # cProfile of the app's requests only (pstats file, c = 1)
  py-spy record -r 200 --nonblocking -f raw -o spy.txt -- .venv/bin/python bench/profile_ack.py \
      --only triage --concurrency 8         # sampled, every thread, requests in flight at once
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

import ack_compare as AC  # noqa: E402

SECRET = "benchsecret"  # noqa: S105  (the harness's loopback signing secret)


def asgi_post(app, path: str, headers: dict[str, str], body: bytes):
    """One HTTP POST through an ASGI app; returns (status, body)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
             "root_path": "", "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 5555),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    sent = False
    out: dict = {"status": None, "body": b""}

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        elif message["type"] == "http.response.body":
            out["body"] += message.get("body", b"")

    async def run():
        await app(scope, receive, send)
        return out["status"], out["body"]

    return run()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the fake Slack API did not start on port {port}")


def signed(factory, kind: str, seq: int) -> tuple[dict[str, str], bytes]:
    ctype, body = factory.body(kind, seq)
    ts = str(int(time.time()))
    return ({"content-type": ctype, "x-slack-request-timestamp": ts,
             "x-slack-signature": AC.L.sign(SECRET, ts, body), "host": "127.0.0.1"}, body.encode())


async def lifespan_start(app):
    """Run the app's start-up (its lifespan) so that it serves as under uvicorn."""
    queue: asyncio.Queue = asyncio.Queue()
    await queue.put({"type": "lifespan.startup"})
    started = asyncio.Event()

    async def receive():
        return await queue.get()

    async def send(message):
        if message["type"].startswith("lifespan.startup"):
            started.set()

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send))
    await started.wait()
    return queue, task


async def main_async(a) -> int:
    AC.load_harness()
    AC.patch_load("valid")
    harness = Path(os.environ["TRIAGE_BENCH_HARNESS"]).resolve()
    sys.path.insert(0, str(harness))
    import baseline_app

    # The harness's fake Slack API (Bolt asks auth.test once; nothing else is called on this path).
    port = free_port()
    slack_api = f"http://127.0.0.1:{port}/api/"
    fake = subprocess.Popen([sys.executable, str(harness / "fake_slack_api.py"), "--port", str(port),  # noqa: S603
                             "--latency-ms", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port)
    tmp = Path(tempfile.mkdtemp(prefix="triage-prof-"))
    state_file = tmp / "view_state.json"
    AC.write_state_file(state_file)
    db_url, pg_db = AC.create_database(a.db, tmp, "bench_prof")
    os.environ.update({"DATABASE_URL": db_url, "TRIAGE_CONFIG": str(AC.CONFIG),
                       "TRIAGE_EMBEDDED_WORKER": "false", "SLACK_SIGNING_SECRET": SECRET,
                       "SLACK_BOT_TOKEN": "xoxb-bench", "SLACK_API_URL": slack_api,
                       "LOG_LEVEL": "WARNING"})
    try:
        from triage.web.main import create_app

        ours = create_app()
        queue, task = await lifespan_start(ours)
        base = baseline_app.build_async(argparse.Namespace(
            token="xoxb-bench", slack_api=slack_api, signing_secret=SECRET,  # noqa: S106
            process_before_response=False, lazy=False))
        f_ours = AC.L.PayloadFactory(AC.L.LoadConfig(url="", signing_secret=SECRET,
                                                      view_callback_id="sa_request_modal",
                                                      view_state_file=str(state_file)))
        f_base = AC.L.PayloadFactory(AC.L.LoadConfig(url="", signing_secret=SECRET))
        profiler = cProfile.Profile() if a.profile else None
        cpu: dict[str, list[float]] = {"baseline": [], "triage": []}
        seq = 0

        async def one(name: str, record: bool) -> None:
            nonlocal seq
            seq += 1
            app, factory = (ours, f_ours) if name == "triage" else (base, f_base)
            headers, body = signed(factory, "view_submission", seq)
            if profiler and name == "triage" and record:
                profiler.enable()
            t0 = time.process_time()
            status, answer = await asgi_post(app, "/slack/events", headers, body)
            t1 = time.process_time()
            if profiler and name == "triage" and record:
                profiler.disable()
            if status != 200 or (name == "triage" and answer not in (b"", b"{}") and b"errors" in answer):
                raise SystemExit(f"{name}: {status} {answer[:300]!r}")
            if record:
                cpu[name].append((t1 - t0) * 1000)

        for _ in range(a.warmup):
            await one("triage", False)
            await one("baseline", False)
        if a.only:  # one app alone, for a sampling profiler run around this script (py-spy record -- ...)
            cpu = {a.only: cpu[a.only]}
        block = 50
        for r in range(a.requests // block):
            order = ("triage", "baseline") if r % 2 == 0 else ("baseline", "triage")
            for name in order:
                if name not in cpu:
                    continue
                if a.concurrency == 1:
                    for _ in range(block):
                        await one(name, True)
                    continue
                # c requests in flight at a time: the block's CPU, per request
                t0 = time.process_time()
                left = iter(range(block))

                async def sender(name=name, left=left):
                    for _ in left:
                        await one(name, False)

                await asyncio.gather(*(sender() for _ in range(a.concurrency)))
                cpu[name].extend([(time.process_time() - t0) * 1000 / block] * block)
        await queue.put({"type": "lifespan.shutdown"})
        await asyncio.wait_for(task, 10)
        if profiler:
            profiler.dump_stats(a.profile)
        for name, xs in cpu.items():
            print(f"{name:9s} n={len(xs)} CPU ms per submission: mean {statistics.fmean(xs):.3f} "
                  f"median {statistics.median(xs):.3f}")
        if not a.only:
            ratio = statistics.fmean(cpu["triage"]) / statistics.fmean(cpu["baseline"])
            ratio_med = statistics.median(cpu["triage"]) / statistics.median(cpu["baseline"])
            print(f"ratio triage / baseline: mean {ratio:.2f}, median {ratio_med:.2f}")
        print(f"app database: {AC.count_requests(db_url, pg_db)}")
        return 0
    finally:
        fake.terminate()
        fake.wait(10)
        AC.drop_database(pg_db)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=1000, help="per app, in blocks of 50 (ABBA)")
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--concurrency", type=int, default=1,
                    help="requests in flight at a time (above 1, CPU is measured per block of 50)")
    ap.add_argument("--only", choices=["triage", "baseline"],
                    help="run one app only (no ratio), e.g. under py-spy record --nonblocking")
    ap.add_argument("--profile", help="write a cProfile of the app's requests to this file")
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
