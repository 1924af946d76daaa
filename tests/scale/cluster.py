"""The Procfile's processes for real: `web` (TRIAGE_EMBEDDED_WORKER=false triage serve) and `worker`
(triage worker) as subprocesses against one PostgreSQL, Slack's side of a burst of signed submissions
(load-balanced over the web processes, retried the way Slack retries), and the checks of what landed.

The fake Slack and GitLab servers run in the test process; the subprocesses reach them by SLACK_API_URL and
GITLAB_URL like they would reach the real ones.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import sqlalchemy as sa

from tests.conftest import BOT_TOKEN, GITLAB_TOKEN, SIGNING_SECRET, WEBHOOK_SECRET, sign, submission_payload
from tests.fakes.gitlab_api import FakeGitLab
from tests.fakes.slack_api import FakeSlack

LEADERS = "C0SCLEADS"
LEADER = "U0SCLEAD1"


def scale_n(default: int) -> int:
    """How many submissions a scale test sends: TRIAGE_SCALE_N (e.g. 2000) or the test's CI-sized default."""
    return int(os.environ.get("TRIAGE_SCALE_N") or default)


@dataclass(frozen=True)
class Layout:
    """Queues (each its own channel and GitLab project) and the AEs who submit, round-robin."""

    queues: int = 8
    aes: int = 40

    def queue_key(self, i: int) -> str:
        return f"q{i % self.queues}"

    def channel(self, q: int) -> str:
        return f"C0SCALE{q:02d}"

    def project(self, q: int) -> str:
        return f"sa-triage-boards/scale-{q}"

    def ae(self, i: int) -> str:
        return f"U0SCAE{i % self.aes:03d}"

    def toml(self) -> str:
        out = [f'[slack]\nleaders = ["{LEADER}"]\nleaders_channel = "{LEADERS}"\n',
               '[sla]\nclock = "calendar"\nreminders = [0.5, 0.75]\n',
               '[sla.targets]\nopportunity = "24h"\nfollow_up = "48h"\nsecurity_assessment = "48h"\n'
               'event = "5d"\nexpedite = "24h"\n']
        for q in range(self.queues):
            out.append(f'[[queues]]\nkey = "q{q}"\nname = "Scale {q}"\ngitlab_project = "{self.project(q)}"\n'
                       f'slack_channel = "{self.channel(q)}"\ntimezone = "UTC"\nsa_users = ["U0SCSA{q:03d}"]\n')
        return "\n".join(out)

    def seed(self, slack: FakeSlack, gitlab: FakeGitLab) -> None:
        for q in range(self.queues):
            slack.add_channel(self.channel(q))
            gitlab.add_project(self.project(q), id=700 + q)
            slack.add_user(f"U0SCSA{q:03d}", name=f"sa{q}", real_name=f"SA {q}", email=f"sa{q}@example.com",
                           tz="UTC")
        slack.add_channel(LEADERS)
        slack.add_user(LEADER, name="lead", real_name="Lee Leader", email="lead@example.com", tz="UTC")
        for a in range(self.aes):
            slack.add_user(self.ae(a), name=f"ae{a}", real_name=f"AE {a}", email=f"ae{a}@example.com",
                           tz="America/New_York")


def opportunity(i: int) -> str:
    """A distinct valid 15-character Opportunity id (the app stores its 18-character form)."""
    return f"006SC{i:010d}"


def values(layout: Layout, i: int) -> dict[str, Any]:
    return {
        "request_type": "opportunity", "queue": layout.queue_key(i), "customer_name": f"Scale Customer {i}",
        "opportunity": opportunity(i), "command_plan_url": "https://docs.example.com/command-plan/scale",
        "why_now": "The customer renews next month and is comparing two vendors right now.",
        "pain": "Their release pipeline takes four hours and blocks every hotfix they try to ship.",
        "champion": "Dana Smith, platform lead", "asks": ["demo"], "hosting": "saas",
    }


# ----------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """One Procfile process. Killed by its own pid only."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path, port: int | None = None):
        self.name, self.argv, self.env, self.port = name, argv, env, port
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> Proc:
        self.starts += 1
        log = self.log_path.open("a")
        log.write(f"--- start {self.starts}: {' '.join(self.argv)}\n")
        log.flush()
        self.popen = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        log.close()
        return self

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as when a dyno or container is killed."""
        if self.alive:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)

    def stop(self) -> None:
        if self.alive:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return f"== {self.name} ({self.log_path})\n" + "\n".join(text[-lines:])


class Cluster:
    """`web` x2 and `worker` x2 as the Procfile runs them, against one database."""

    def __init__(self, *, database_url: str, config_path: Path, slack: FakeSlack, gitlab: FakeGitLab,
                 log_dir: Path, webs: int = 2, workers: int = 2, extra_env: dict[str, str] | None = None,
                 start_workers: bool = True):
        self.start_workers = start_workers
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITLAB_", "TRIAGE_"))}
        env.update({
            "DATABASE_URL": database_url, "TRIAGE_CONFIG": str(config_path), "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET, "SLACK_API_URL": slack.url, "GITLAB_URL": gitlab.url,
            "GITLAB_TOKEN": GITLAB_TOKEN, "GITLAB_WEBHOOK_SECRET": WEBHOOK_SECRET,
            # A killed worker's leased entries go back to the others after this (the default is 2 minutes).
            "TRIAGE_OUTBOX_LEASE_SECONDS": "10", "PYTHONUNBUFFERED": "1",
        })
        env.update(extra_env or {})
        self.env = env
        triage = [sys.executable, "-m", "triage.cli"]
        subprocess.run([*triage, "migrate"], env=env, check=True, capture_output=True)
        self.webs = []
        for i in range(webs):
            port = free_port()
            self.webs.append(Proc(f"web{i}", [*triage, "serve", "--port", str(port)],
                                  {**env, "TRIAGE_EMBEDDED_WORKER": "false"}, log_dir, port))
        self.workers = [Proc(f"worker{i}", [*triage, "worker"], env, log_dir) for i in range(workers)]

    def __enter__(self) -> Cluster:
        for p in [*self.webs, *(self.workers if self.start_workers else [])]:
            p.start()
        for w in self.webs:
            self.wait_healthy(w)
        return self

    def __exit__(self, *exc: object) -> None:
        for p in [*self.webs, *self.workers]:
            p.stop()

    def url(self, web: Proc) -> str:
        return f"http://127.0.0.1:{web.port}"

    def wait_healthy(self, web: Proc, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            if not web.alive:
                raise AssertionError(f"{web.name} exited:\n{web.tail()}")
            try:
                r = httpx.get(self.url(web) + "/healthz", timeout=2)
                if r.status_code in (200, 503):
                    body = r.json()
                    if body.get("database", {}).get("ok"):
                        return body
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{web.name} not healthy within {timeout}s:\n{web.tail()}")
            time.sleep(0.1)

    def logs(self) -> str:
        return "\n".join(p.tail() for p in [*self.webs, *self.workers])


# ----------------------------------------------------------------------------- Slack's side of the burst


@dataclass
class Outcome:
    """What Slack saw for one submission."""

    index: int
    acked: bool = False
    attempts: int = 0  # deliveries of this payload (1 = no retry)
    ack_ms: float | None = None  # latency of the answer that acknowledged it
    url: str | None = None  # the web process that acknowledged it
    statuses: list[Any] = field(default_factory=list)


class Balancer:
    """Round-robin over the web processes a load balancer still sends to."""

    def __init__(self, urls: Sequence[str]):
        self.urls = list(urls)
        self.down: set[str] = set()
        self._lock = threading.Lock()
        self._n = 0

    def pick(self, avoid: str | None = None) -> str:
        with self._lock:
            live = [u for u in self.urls if u not in self.down] or self.urls
            if avoid in live and len(live) > 1:
                live = [u for u in live if u != avoid]
            self._n += 1
            return live[self._n % len(live)]


RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0)  # Slack retries a failed delivery (X-Slack-Retry-Num 1..3), scaled down


def send_burst(balancer: Balancer, view: dict[str, Any], layout: Layout, n: int, *, concurrency: int = 16,
               on_progress: Callable[[int], None] | None = None, retries: int = 3) -> list[Outcome]:
    """Send n signed view_submissions of the app's modal, each with its own view id; a delivery that gets
    no 200 (connection refused or reset, timeout, 5xx) is sent again with X-Slack-Retry-Num, same body."""
    outcomes = [Outcome(i) for i in range(n)]
    done = Counter()
    done_lock = threading.Lock()
    local = threading.local()

    def client() -> httpx.Client:
        if not hasattr(local, "c"):
            local.c = httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0))
        return local.c

    def one(i: int) -> None:
        payload = submission_payload(view, values(layout, i), user=layout.ae(i), view_id=f"VSC{i:08d}")
        body = urlencode({"payload": json.dumps(payload)}).encode()
        out, url = outcomes[i], None
        for attempt in range(retries + 1):
            url = balancer.pick(avoid=url if attempt else None)
            headers = {"Content-Type": "application/x-www-form-urlencoded", **sign(body)}
            if attempt:
                headers["X-Slack-Retry-Num"] = str(attempt)
                headers["X-Slack-Retry-Reason"] = "http_error"
            out.attempts += 1
            t0 = time.perf_counter()
            try:
                r = client().post(url + "/slack/events", content=body, headers=headers)
                out.statuses.append(r.status_code)
                if r.status_code == 200 and r.json().get("response_action") == "update" \
                        and "is saved" in json.dumps(r.json()):
                    out.acked, out.ack_ms, out.url = True, (time.perf_counter() - t0) * 1000, url
                    break
            except (httpx.HTTPError, ValueError) as e:
                out.statuses.append(e.__class__.__name__)
            time.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
        with done_lock:
            done["n"] += 1
            k = done["n"]
        if on_progress:
            on_progress(k)

    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="slack-sender") as pool:
        list(pool.map(one, range(n)))
    return outcomes


def open_modal(cluster: Cluster, slack: FakeSlack, user: str) -> dict[str, Any]:
    """The global shortcut on a web process; the modal the app opens, as the fake Slack received it."""
    from tests.conftest import load_payload

    p = load_payload("global_shortcut.json")
    p.update(callback_id="sa_request", trigger_id=slack.new_trigger_id())
    p["user"] = {"id": user, "username": "ae", "team_id": p["team"]["id"]}
    body = urlencode({"payload": json.dumps(p)}).encode()
    r = httpx.post(cluster.url(cluster.webs[0]) + "/slack/events", content=body,
                   headers={"Content-Type": "application/x-www-form-urlencoded", **sign(body)}, timeout=10)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 10
    while not slack.calls_to("views.open"):
        assert time.monotonic() < deadline, "views.open never came"
        time.sleep(0.02)
    view = slack.calls_to("views.open")[-1].args["view"]
    return view if isinstance(view, dict) else json.loads(view)


# ----------------------------------------------------------------------------- what landed

MARKER = re.compile(r"<!-- triage-request: (\d+) -->")


@dataclass
class Landed:
    requests: int
    outbox_waiting: int
    issues: Counter  # request id -> issues carrying its marker
    issue_posts: int  # POST .../issues answered 201
    cards: Counter  # request id -> top-level cards
    dms: Counter  # request id (from the reference in the text) -> DMs
    submission_keys: set[str]

    def complete(self, n: int) -> bool:
        return (self.requests >= n and self.outbox_waiting == 0 and len(self.issues) >= n
                and len(self.cards) >= n and len(self.dms) >= n)


def landed(database_url: str, slack: FakeSlack, gitlab: FakeGitLab, layout: Layout) -> Landed:
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as c:
            requests = c.execute(sa.text("select count(*) from request")).scalar_one()
            waiting = c.execute(sa.text("select count(*) from outbox where done_at is null")).scalar_one()
            keys = {r[0] for r in c.execute(sa.text("select submission_key from request"))}
    finally:
        engine.dispose()
    issues: Counter = Counter()
    for q in range(layout.queues):
        for issue in gitlab.issues(layout.project(q)):
            m = MARKER.search(issue.get("description") or "")
            if m:
                issues[int(m.group(1))] += 1
    posts = sum(1 for c in gitlab.calls_matching("POST", r"/projects/[^/]+/issues$") if c.status == 201)
    cards: Counter = Counter()
    for q in range(layout.queues):
        for m in slack.messages_in(layout.channel(q), top_level_only=True):
            rid = ((m.get("metadata") or {}).get("event_payload") or {}).get("request_id")
            if rid is not None:
                cards[int(rid)] += 1
    dms: Counter = Counter()
    for m in slack.messages:
        if str(m["channel"]).startswith("D"):
            text = json.dumps([m.get("text"), m.get("blocks")])
            found = re.search(r"SAR-(\d+)", text)
            if found and "landed in" in text:
                dms[int(found.group(1))] += 1
    return Landed(requests, waiting, issues, posts, cards, dms, keys)


def wait_until(what: str, predicate: Callable[[], Any], *, timeout: float, cluster: Cluster | None = None,
               detail: Callable[[], str] | None = None) -> Any:
    """Wait for the other processes to finish their work (synchronisation; the timeout only bounds a hang)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except sa.exc.OperationalError:  # the database restarting (the fault under test): look again
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}" + (f": {detail()}" if detail else "")
                                 + ("\n" + cluster.logs() if cluster else ""))
        time.sleep(0.25)


def shift_clock(database_url: str, hours: float) -> None:
    """Move every stored time back by `hours`, which to the SLA clock is the same as `hours` passing."""
    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    iv = f"interval '{float(hours)} hours'"
    try:
        with engine.begin() as c:
            c.execute(sa.text(f"update request set created_at = created_at - {iv}, updated_at = updated_at - {iv}, "
                              f"deadline = deadline - {iv}, next_check_at = next_check_at - {iv}"))
            c.execute(sa.text(f"update request_event set at = at - {iv}"))
    finally:
        engine.dispose()


def percentile(values: Iterable[float], p: float) -> float:
    xs = sorted(values)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, round(p / 100 * (len(xs) - 1)))]
