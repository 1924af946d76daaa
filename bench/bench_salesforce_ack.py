"""How long the request modal's submission takes to acknowledge with the Salesforce lookup on the ack path.

Same run, same process, four set-ups side by side: no Salesforce; Salesforce answering at once; answering in
2.5 s (inside Slack's 3 s, past the lookup budget); not answering at all (a 30 s delay). Each submission is a
signed view_submission through the real ASGI app (in-process test client) to the fake Slack, GitLab and
Salesforce servers on 127.0.0.1. Every submission uses a fresh opportunity id, so the cache never helps.

    .venv/bin/python bench/bench_salesforce_ack.py [--n 20] [--budget 1.5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from tests.conftest import (
    BOT_TOKEN,
    CONFIG_TOML,
    GITLAB_TOKEN,
    SIGNING_SECRET,
    make_settings,
    post_slack_payload,
    submission_payload,
)
from tests.fakes.gitlab_api import FakeGitLab
from tests.fakes.salesforce_api import FakeSalesforce, to18
from tests.fakes.slack_api import FakeSlack
from tests.flows.test_intake import GOOD, open_modal
from triage.migrate import upgrade
from triage.web import create_app


def opp_ids(n: int) -> list[str]:
    return [to18(f"0065g0000{i:06d}") for i in range(n)]


def run(setup: str, n: int, budget: float, slack: FakeSlack, sf: FakeSalesforce, tmp: Path) -> list[float]:
    sf.reset()
    ids = opp_ids(n)
    for oid in ids:
        sf.add_opportunity(oid, stage="Discovery", account="Acme Corp")
    sf.set_delay("query", {"none": 0, "fast": 0, "slow": 2.5, "silent": 30}[setup])
    toml = tmp / f"{setup}.toml"
    toml.write_text(CONFIG_TOML + f'\n[salesforce]\nlookup_seconds = {budget}\n')
    env = dict(DATABASE_URL=f"sqlite:///{tmp / (setup + '.db')}", TRIAGE_CONFIG=str(toml), SLACK_BOT_TOKEN=BOT_TOKEN,
               SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=slack.url, GITLAB_URL="http://127.0.0.1:9",
               GITLAB_TOKEN=GITLAB_TOKEN, TRIAGE_EMBEDDED_WORKER=False)
    if setup != "none":
        env.update(SALESFORCE_CLIENT_ID=sf.client_id, SALESFORCE_CLIENT_SECRET=sf.client_secret,
                   SALESFORCE_LOGIN_URL=sf.login_url, SALESFORCE_CA_BUNDLE=sf.ca_file)
    settings = make_settings(**env)
    upgrade(settings.database_url)
    times = []
    with TestClient(create_app(settings, migrate=False, worker=False)) as client:
        for i, oid in enumerate(ids):
            view = open_modal(client, slack)
            payload = submission_payload(view, {**GOOD, "opportunity": oid}, view_id=f"V{setup}{i:05d}")
            t0 = time.perf_counter()
            r = post_slack_payload(client, payload)
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200 and r.json()["response_action"] == "update", r.text
    return times


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--budget", type=float, default=1.5)
    args = ap.parse_args()
    with FakeSlack(token=BOT_TOKEN) as slack, FakeGitLab(token=GITLAB_TOKEN), FakeSalesforce() as sf, \
            tempfile.TemporaryDirectory() as tmp:
        slack.add_user("U0AE00001", name="alex", real_name="Alex Account", email="alex@example.com")
        for ch in ("C0AMEREAST", "C0EMEA001", "C0LEADERS"):
            slack.add_channel(ch)
        rows = []
        for setup in ("none", "fast", "slow", "silent"):
            t = run(setup, args.n, args.budget, slack, sf, Path(tmp))
            rows.append((setup, statistics.median(t), max(t)))
    base = rows[0][1]
    print(f"| Salesforce | ack p50 | ack max | p50 / no Salesforce |  (n = {args.n}, budget {args.budget} s)")
    print("| --- | --- | --- | --- |")
    for setup, p50, worst in rows:
        print(f"| {setup} | {p50 * 1000:.0f} ms | {worst * 1000:.0f} ms | {p50 / base:.1f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
