#!/usr/bin/env python
"""Slack acknowledgement latency: the triage app vs the bare async Bolt baseline, in one run.

A thin wrapper around the shared load harness (its `run_compare.py` and `load.py`, not copied here; the
directory is given by TRIAGE_BENCH_HARNESS):
it starts the app with `uvicorn triage.web:app` on a fresh database, points it at the harness's fake
Slack API, and runs the harness's load against it and against `baseline_app.py --mode async` in ABBA
rounds. What it adds to the harness:

* the app's own modal: view_submission carries the app's real `sa_request_modal` blocks and a VALID
  state (queue from bench/bench.toml, 18-char-checked Opportunity id, https Command Plan link, 6+ word
  sentences, asks ["demo"], hosting "saas"), so every submission is validated, checked for duplicates and
  stored (the real path), not answered with a cheaper validation-error or duplicate-notice ack;
* distinct submissions: load.py numbers view ids "V%09d" % seq from 0 in every load run, and uses one
  state for every request when given a state file, so after the first round every submission would be
  a replay (same view id -> same row) or a duplicate (same Opportunity -> "already open" notice). Here
  every submission gets a view id and an Opportunity id that are unique for the whole process
  (`--submission duplicate` keeps one Opportunity to measure the duplicate-notice path instead,
  `--submission invalid` sends a too-short pain statement to measure the validation-error path).

Every other option is passed to run_compare.py unchanged (last one wins), e.g.

  .venv/bin/python bench/ack_compare.py --concurrency 1,8,32 --latency-ms 50 --requests 600 --rounds 2
  .venv/bin/python bench/ack_compare.py --kinds shortcut --concurrency 32 --requests 2000 --rounds 1 \\
      --latency-ms 50                                   # the 2,000-shortcut burst (views.open lateness)
  .venv/bin/python bench/ack_compare.py --db postgres ...   # PostgreSQL instead of SQLite

Results: bench/results/<timestamp>/ (git-ignored). Loopback only; everything started is stopped on exit.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
L: Any = None  # the harness's load.py and run_compare.py, imported by load_harness()
RC: Any = None

CONFIG = REPO / "bench" / "bench.toml"
QUEUE = "bench"
PG_ADMIN_URL = os.environ.get("TRIAGE_BENCH_PG", "postgresql://postgres@127.0.0.1:5432")
SEQ_STRIDE = 20_000_000  # > load.py's warm-up seqs (10_000_000 + i): view ids never collide between runs


# ----------------------------------------------------------------------------- the app's modal state

def product_values(*, opportunity: str, customer: str, mode: str = "valid") -> dict:
    """view.state.values as Slack sends them for the app's request modal (block_id == action_id)."""
    def opt(value: str) -> dict:
        return {"text": {"type": "plain_text", "text": value, "emoji": True}, "value": value}

    pain = ("Their release pipeline takes four hours and blocks every hotfix they try to ship."
            if mode != "invalid" else "slow pipelines")
    return {
        "request_type": {"request_type": {"type": "static_select", "selected_option": opt("opportunity")}},
        "queue": {"queue": {"type": "static_select", "selected_option": opt(QUEUE)}},
        "customer_name": {"customer_name": {"type": "plain_text_input", "value": customer}},
        "opportunity": {"opportunity": {"type": "plain_text_input", "value": opportunity}},
        "command_plan_url": {"command_plan_url": {"type": "url_text_input",
                                                  "value": "https://docs.example.com/command-plan/acme"}},
        "why_now": {"why_now": {"type": "plain_text_input",
                                "value": "The customer renews next month and is comparing two vendors now."}},
        "pain": {"pain": {"type": "plain_text_input", "value": pain}},
        "champion": {"champion": {"type": "plain_text_input", "value": "Dana Smith, platform lead"}},
        "asks": {"asks": {"type": "multi_static_select", "selected_options": [opt("demo")]}},
        "hosting": {"hosting": {"type": "static_select", "selected_option": opt("saas")}},
        "preferred_date_1": {"preferred_date_1": {"type": "datetimepicker", "selected_date_time": None}},
        "preferred_date_2": {"preferred_date_2": {"type": "datetimepicker", "selected_date_time": None}},
        "meeting_objective": {"meeting_objective": {"type": "plain_text_input", "value": None}},
        "capabilities": {"capabilities": {"type": "plain_text_input", "value": None}},
        "current_tools": {"current_tools": {"type": "plain_text_input", "value": None}},
        "additional_context": {"additional_context": {"type": "plain_text_input", "value": None}},
        "expedite": {"expedite": {"type": "checkboxes", "selected_options": []}},
        "expedite_reason": {"expedite_reason": {"type": "plain_text_input", "value": None}},
    }


def opportunity_id(n: int) -> str:
    """A distinct, valid 15-character Opportunity id (the app normalises it to 18)."""
    return f"006BN{n:010d}"


def write_state_file(path: Path) -> None:
    from blocks.request_modal import request_modal

    view = request_modal(request_type="opportunity", queues=[(QUEUE, "Bench queue")], initial={},
                         private_metadata="")
    state = product_values(opportunity=opportunity_id(0), customer="Bench Customer 0")
    path.write_text(json.dumps({"blocks": view["blocks"], "values": state}, indent=1))


def patch_load(mode: str) -> None:
    """Distinct view ids (all kinds) and, for the app, distinct Opportunity ids per submission."""
    orig_init, orig_body = L.PayloadFactory.__init__, L.PayloadFactory.body
    instances = itertools.count(1)

    def __init__(self, cfg):
        orig_init(self, cfg)
        self._base = next(instances) * SEQ_STRIDE
        self._product = bool(cfg.view_state_file)

    def body(self, kind, seq):
        if kind != "view_submission":
            return orig_body(self, kind, seq)
        n = self._base + seq  # a multiple of 50 apart: load.py's user rotation (seq % 50) is unchanged
        if self._product:
            opp = opportunity_id(0 if mode == "duplicate" else n)
            self.states = [product_values(opportunity=opp, customer=f"Bench Customer {n}", mode=mode)]
        return orig_body(self, kind, n)

    L.PayloadFactory.__init__, L.PayloadFactory.body = __init__, body


# ----------------------------------------------------------------------------- database

def psql_admin(sql: str) -> None:
    # loopback PostgreSQL, fixed arguments: CREATE/DROP of the bench's own database only
    subprocess.run(["psql", PG_ADMIN_URL + "/postgres", "-v", "ON_ERROR_STOP=1", "-qc", sql],  # noqa: S603, S607
                   check=True)


def create_database(db: str, tmp: Path, name: str) -> tuple[str, str | None]:
    """A fresh database for one run: (the app's DATABASE_URL, the PostgreSQL database's name, or None for
    SQLite, in `tmp`). `name` prefixes the PostgreSQL database's name; drop it with `drop_database`."""
    if db == "sqlite":
        return f"sqlite:///{tmp}/triage.db", None
    pg_db = f"{name}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    psql_admin(f"CREATE DATABASE {pg_db}")
    return f"postgresql+psycopg://{PG_ADMIN_URL.split('://', 1)[1]}/{pg_db}", pg_db


def drop_database(pg_db: str | None) -> None:
    """Drop what `create_database` made (nothing for SQLite); a failure is a line, not an error."""
    if pg_db:
        try:
            psql_admin(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)")
        except subprocess.CalledProcessError as e:
            print(f"could not drop {pg_db}: {e}", file=sys.stderr)


def load_harness() -> None:
    """Import the shared load harness from TRIAGE_BENCH_HARNESS, or stop with one line saying what to set.
    (bench_intake.py imports this module for the modal state only, without the harness.)"""
    global L, RC
    where = os.environ.get("TRIAGE_BENCH_HARNESS", "")
    harness = Path(where).expanduser().resolve() if where else None
    if harness is None or not (harness / "run_compare.py").is_file() or not (harness / "load.py").is_file():
        sys.exit("bench/ack_compare.py: set TRIAGE_BENCH_HARNESS to the shared load harness's directory "
                 f"(the one with run_compare.py and load.py); it is {where!r}")
    sys.path.insert(0, str(harness))
    import load
    import run_compare

    L, RC = load, run_compare


def main(argv=None) -> int:
    load_harness()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 add_help=True)
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--submission", choices=["valid", "duplicate", "invalid"], default="valid")
    ap.add_argument("--uvicorn-args", default="--log-level warning --no-access-log --backlog 1024",
                    help="extra uvicorn options for the app (the baseline runs with these settings)")
    ap.add_argument("--app-dir", default=str(REPO),
                    help="run the app from this checkout (e.g. a patched copy; default: this repo)")
    ap.add_argument("--app-prefix", default="",
                    help="command put before the app's uvicorn, e.g. 'py-spy record -r 250 -o prof.svg --'")
    ap.add_argument("--embedded-worker", action="store_true",
                    help="TRIAGE_EMBEDDED_WORKER=true (default false: the web process only acknowledges)")
    a, rest = ap.parse_known_args(argv)

    patch_load(a.submission)
    tmp = Path(tempfile.mkdtemp(prefix="triage-ack-"))
    state_file = tmp / "view_state.json"
    write_state_file(state_file)
    db_url, pg_db = create_database(a.db, tmp, "bench_ack")

    env = {"DATABASE_URL": db_url, "TRIAGE_CONFIG": str(CONFIG),
           "TRIAGE_EMBEDDED_WORKER": "true" if a.embedded_worker else "false"}
    cmd = (f"cd {shlex.quote(a.app_dir)} && exec env "
           + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
           + (f" {a.app_prefix}" if a.app_prefix else "")
           + f" {shlex.quote(str(Path(sys.executable).parent / 'uvicorn'))} triage.web:app"
           + " --host 127.0.0.1 --port {port} " + a.uvicorn_args)
    rc_argv = [
        "--baselines", "async", "--ref", "baseline-async", "--product-name", "triage",
        "--product-cmd", cmd, "--product-health", "/healthz",
        "--product-load-opt", "view_callback_id=sa_request_modal",
        "--product-load-opt", f"view_state_file={state_file}",
        "--kinds", "shortcut,view_submission,block_actions",
        "--concurrency", "1,8,32", "--latency-ms", "50",
        "--out-dir", str(REPO / "bench" / "results"),
        *rest,
    ]
    print(f"ack_compare: app={a.app_dir} db={a.db} submission={a.submission} worker={a.embedded_worker} "
          f"tmp={tmp}", flush=True)
    out_base = REPO / "bench" / "results"
    before = set(out_base.glob("*")) if out_base.exists() else set()
    try:
        rc = RC.main(rc_argv)
        new_dirs = sorted(set(out_base.glob("*")) - before)
        if new_dirs and (new_dirs[-1] / "results.json").exists():
            md = markdown(json.loads((new_dirs[-1] / "results.json").read_text()))
            (new_dirs[-1] / "tables.md").write_text(md)
            print("\n" + md)
        return rc
    finally:
        RC.cleanup()  # stop the app before dropping its database
        print(f"app database after the run: {count_requests(db_url, pg_db)}")
        drop_database(pg_db)


def markdown(results: dict) -> str:
    """Markdown tables for BENCHMARKS.md: per cell and kind, ack p50/p99 of the app vs the baseline."""
    ref, names = results["ref"], results["targets"]
    app = next((n for n in names if n != ref), None)
    f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    r = lambda a, b: "-" if a is None or not b else f"{a / b:.2f}"  # noqa: E731
    lines = ["| cell | kind | n | baseline p50 / p99 ms | triage p50 / p99 ms | ratio p50 / p99 | "
             "errors (base/app) |", "|---|---|---|---|---|---|---|"]
    side = ["| cell | baseline views.open ok, lateness p50 / p99 / max ms | triage views.open ok, "
            "lateness p50 / p99 / max ms | expired (base/app) | triage other calls |", "|---|---|---|---|---|"]
    cpu = ["| cell | baseline req/s, CPU ms/req | triage req/s, CPU ms/req |", "|---|---|---|"]
    for cell, data in results["cells"].items():
        b, t = data[ref], data.get(app) if app else None
        for kind in results["kinds"]:
            sb, st = b["summary"].get(kind), (t or {}).get("summary", {}).get(kind)
            if not sb:
                continue
            lines.append(f"| {cell} | {kind} | {sb['count']} | {f(sb['p50_ms'])} / {f(sb['p99_ms'])} | "
                         + (f"{f(st['p50_ms'])} / {f(st['p99_ms'])} | {r(st['p50_ms'], sb['p50_ms'])} / "
                            f"{r(st['p99_ms'], sb['p99_ms'])} | {sb['errors']}/{st['errors']} |"
                            if st else "- | - | - |"))
        if t:
            def vo(x):
                se = x["side_effects"].get("shortcut")
                if not se:
                    return "-", 0
                exp = se["errors"].get("expired_trigger_id", 0)
                return (f"{se['ok']}/{se['expected']}, {f(se['delay_p50_ms'])} / {f(se['delay_p99_ms'])} / "
                        f"{f(se['delay_max_ms'])}", exp)
            (vb, eb), (vt, et) = vo(b), vo(t)
            calls: dict = {}
            for run in results["runs"]:
                if run["cell"] == cell and run["target"] == app:
                    for m, n in run["fake"]["calls"].items():
                        if m != "views.open":
                            calls[m] = calls.get(m, 0) + n
            if vb != "-":
                side.append(f"| {cell} | {vb} | {vt} | {eb}/{et} | "
                            + (", ".join(f"{m} {n}" for m, n in calls.items()) or "-") + " |")
            cpu.append(f"| {cell} | {f(b['summary']['all']['rps'])}, {f(b['cpu_ms_per_req'])} | "
                       f"{f(t['summary']['all']['rps'])}, {f(t['cpu_ms_per_req'])} |")
    return "\n".join([*lines, "", *side, "", *cpu]) + "\n"


def count_requests(db_url: str, pg_db: str | None = None) -> str:
    """How many requests the app stored (a check that submissions really took the saving path)."""
    sql = "select (select count(*) from request) || ' requests stored, ' || (select count(*) from outbox)"
    try:
        if pg_db:
            out = subprocess.run(["psql", f"{PG_ADMIN_URL}/{pg_db}", "-Atc",  # noqa: S603, S607
                                  sql + " || ' outbox entries'"],
                                 capture_output=True, text=True, check=True)
            return out.stdout.strip()
        import sqlite3

        with sqlite3.connect(db_url.removeprefix("sqlite:///")) as c:
            return c.execute(sql + " || ' outbox entries'").fetchone()[0]
    except Exception as e:  # noqa: BLE001 - informational only
        return f"(could not count: {e})"


if __name__ == "__main__":
    sys.exit(main())
