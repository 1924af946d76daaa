"""What the admin who runs the app sees: /healthz (503 when the database is down), /metrics, /docs, and
the logs (one line per request and per delivery, JSON when asked, no secrets, no library noise)."""

from __future__ import annotations

import gc
import io
import json
import logging
import socket
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from tests.conftest import BOT_TOKEN, GITLAB_TOKEN, SIGNING_SECRET, WEBHOOK_SECRET, make_settings
from tests.flows.test_reliability import file_request
from triage.logs import configure_logging
from triage.metrics import REGISTRY
from triage.migrate import upgrade
from triage.web import create_app
from triage.worker import run_once


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# ------------------------------------------------------------------ /healthz


def test_healthz_is_503_when_the_database_is_down(config_path):
    settings = make_settings(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/triage",
                             TRIAGE_CONFIG=str(config_path), TRIAGE_EMBEDDED_WORKER=False)
    with TestClient(create_app(settings, migrate=False, worker=False)) as client:
        r = client.get("/healthz")
        assert r.status_code == 503  # a load balancer takes this process out
        body = r.json()
        assert body["status"] == "down" and body["database"]["ok"] is False
        assert client.get("/metrics").status_code == 200  # still scrapeable; the gauges just aren't read


def test_healthz_is_200_with_what_is_not_configured(sqlite_url, config_path):
    upgrade(sqlite_url)
    settings = make_settings(DATABASE_URL=sqlite_url, TRIAGE_CONFIG=str(config_path), TRIAGE_EMBEDDED_WORKER=False)
    with TestClient(create_app(settings, migrate=False, worker=False)) as client:
        r = client.get("/healthz")
        assert r.status_code == 200
        assert r.json()["status"] == "degraded"
        assert "SLACK_BOT_TOKEN" in r.json()["slack"]["detail"]
        assert "socket_mode" not in r.json()  # only reported when SLACK_APP_TOKEN is set


def test_a_serving_process_freezes_what_start_up_built_out_of_the_collector(sqlite_url, config_path):
    """`triage serve` and `triage.web:app` freeze the start-up heap, so full collections (a pause for every
    request in flight) skip it; an app built for a test leaves the collector alone."""
    upgrade(sqlite_url)
    settings = make_settings(DATABASE_URL=sqlite_url, TRIAGE_CONFIG=str(config_path), TRIAGE_EMBEDDED_WORKER=False)
    gc.unfreeze()
    try:
        with TestClient(create_app(settings, migrate=False, worker=False)) as client:
            assert client.get("/healthz").status_code == 200
            left_alone = gc.get_freeze_count()
        with TestClient(create_app(settings, migrate=False, worker=False, freeze_gc=True)) as client:
            assert client.get("/healthz").status_code == 200
            assert gc.get_freeze_count() > left_alone + 10_000  # modules, models, schemas, the Bolt app
    finally:
        gc.unfreeze()


# ------------------------------------------------------------------ /metrics


def test_metrics_follow_a_request_from_ack_to_delivery_to_breach(client, fake_slack, fake_gitlab, settings):
    before = {
        "ack": _sample("triage_slack_ack_seconds_count", kind="view_submission"),
        "issue": _sample("triage_outbox_deliveries_total", kind="create_issue", result="delivered"),
        "issue_retry": _sample("triage_outbox_deliveries_total", kind="create_issue", result="retry"),
        "reminders": _sample("triage_sla_reminders_total"),
        "breaches": _sample("triage_sla_breaches_total"),
        "hooks_bad": _sample("triage_gitlab_webhooks_total", result="unauthorized"),
        "hooks_ignored": _sample("triage_gitlab_webhooks_total", result="ignored"),
    }
    t0 = file_request(client, fake_slack)
    text = client.get("/metrics").text
    depth = next(float(ln.split()[1]) for ln in text.splitlines() if ln.startswith("triage_outbox_depth "))
    assert depth >= 1  # the issue to file waits for the worker
    assert _sample("triage_slack_ack_seconds_count", kind="view_submission") == before["ack"] + 1

    fake_gitlab.set_down(True)
    run_once(settings, t0)
    assert _sample("triage_outbox_deliveries_total", kind="create_issue", result="retry") == before["issue_retry"] + 1
    fake_gitlab.set_down(False)
    run_once(settings, t0 + timedelta(minutes=1))
    assert _sample("triage_outbox_deliveries_total", kind="create_issue", result="delivered") == before["issue"] + 1
    text = client.get("/metrics").text
    assert "triage_outbox_depth 0.0" in text and "triage_outbox_oldest_age_seconds 0.0" in text

    run_once(settings, t0 + timedelta(hours=13))  # past half of the 24 h target: a reminder
    assert _sample("triage_sla_reminders_total") >= before["reminders"] + 1
    run_once(settings, t0 + timedelta(hours=25))  # past the target: the breach
    assert _sample("triage_sla_breaches_total") == before["breaches"] + 1

    assert client.post("/gitlab/webhook", json={}, headers={"X-Gitlab-Token": "wrong"}).status_code == 401
    client.post("/gitlab/webhook", json={"object_kind": "push"}, headers={"X-Gitlab-Token": WEBHOOK_SECRET})
    assert _sample("triage_gitlab_webhooks_total", result="unauthorized") == before["hooks_bad"] + 1
    assert _sample("triage_gitlab_webhooks_total", result="ignored") == before["hooks_ignored"] + 1
    text = client.get("/metrics").text
    assert 'triage_http_requests_total{method="POST",route="/gitlab/webhook",status="401"}' in text


def test_metric_labels_stay_bounded(client):
    client.get("/no/such/page/12345")
    text = client.get("/metrics").text
    assert "12345" not in text and 'route="unmatched"' in text


# ------------------------------------------------------------------ /docs


def test_openapi_documents_the_json_routes_not_the_signed_posts(client):
    schema = client.get("/openapi.json").json()
    assert "/healthz" in schema["paths"] and "/metrics" in schema["paths"]
    assert "/slack/events" not in schema["paths"] and "/gitlab/webhook" not in schema["paths"]
    assert schema["info"]["version"][0].isdigit()
    assert client.get("/docs").status_code == 200
    # Counted under its own route, like every other page, not as "unmatched".
    assert 'route="/docs",status="200"' in client.get("/metrics").text


# ------------------------------------------------------------------ logs


@pytest.fixture
def log_stream():
    """The app's real log handler (as `triage serve` installs it), writing into a buffer."""
    def install(**settings_env: str) -> io.StringIO:
        buf = io.StringIO()
        configure_logging(make_settings(**settings_env), stream=buf)
        return buf

    yield install
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == "triage":
            root.removeHandler(h)
    root.setLevel(logging.WARNING)


SECRETS = {"SLACK_BOT_TOKEN": "xoxb-1111-Q7botQ7", "SLACK_SIGNING_SECRET": "S1gn1ngS3cr3tQ7",
           "GITLAB_TOKEN": "glpat-Q7gitlabQ7", "GITLAB_WEBHOOK_SECRET": "H00kS3cr3tQ7",
           "SLACK_APP_TOKEN": "xapp-1-Q7appQ7"}


def test_json_logs_one_object_per_request_and_delivery_without_secrets(log_stream, client, fake_slack, fake_gitlab,
                                                                      settings):
    buf = log_stream(LOG_FORMAT="json", LOG_LEVEL="INFO",
                     DATABASE_URL="postgresql://u:DbPassQ7x@db.example/triage", **SECRETS)
    t0 = file_request(client, fake_slack)
    run_once(settings, t0)
    log = logging.getLogger("triage.test")
    # Whatever code logs, secrets come out masked: in the message, in fields, in tracebacks.
    log.warning("calling with %s and %s", SECRETS["SLACK_BOT_TOKEN"], "xoxp-9999-someone-elses",
                extra={"header": f"Bearer {SECRETS['GITLAB_TOKEN']}"})
    log.info("websocket wss://wss-primary.slack.com/link/?ticket=Tk7secretTk7&app_id=A1")
    try:
        raise RuntimeError(f"token={SECRETS['SLACK_SIGNING_SECRET']} db=DbPassQ7x")
    except RuntimeError:
        log.exception("boom")

    lines = [json.loads(ln) for ln in buf.getvalue().splitlines()]  # every line is one JSON object
    access = [ln for ln in lines if ln["logger"] == "triage.access"]
    assert {"method", "route", "status", "ms"} <= set(access[0])
    kinds = [ln.get("slack_kind") for ln in access if ln["route"] == "/slack/events"]
    assert kinds == ["shortcut", "view_submission"]
    deliveries = [ln for ln in lines if ln["message"].startswith("delivery ")]
    assert {"kind": "create_issue", "result": "delivered", "reference": "SAR-1"}.items() <= deliveries[0].items()
    text = buf.getvalue()
    for secret in [*SECRETS.values(), "DbPassQ7x", "someone-elses", "Tk7secretTk7"]:
        assert secret not in text
    assert "xoxp-***" in text  # a token shape that is not one of ours is masked too


def test_text_logs_and_level(log_stream, client):
    buf = log_stream(LOG_LEVEL="warning")
    client.get("/healthz")
    assert "GET /healthz" not in buf.getvalue()  # INFO is below the level
    buf = log_stream()
    client.get("/healthz")
    line = buf.getvalue().strip().splitlines()[-1]
    assert line.endswith("ms") and " INFO triage.access: GET /healthz 200 " in line


def test_no_library_noise_at_info(log_stream, sqlite_url, config_path, fake_slack):
    buf = log_stream()
    upgrade(sqlite_url)
    settings = make_settings(DATABASE_URL=sqlite_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
                             SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.url,
                             GITLAB_TOKEN=GITLAB_TOKEN, TRIAGE_EMBEDDED_WORKER=False)
    with TestClient(create_app(settings, migrate=True, worker=False)):
        pass
    text = buf.getvalue()
    for noise in ("Context impl", "Will assume", "setup plugin", "will be unused", "will be ignored"):
        assert noise not in text


def test_a_separate_worker_serves_its_own_metrics(tmp_path, config_path):
    """`triage worker --metrics-port`: the worker's counters (deliveries, SLA) live in its own process."""
    import os
    import signal
    import subprocess
    import sys

    import httpx

    from tests.conftest import wait_for

    port = _closed_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "GITLAB_", "TRIAGE_", "DATABASE_"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'w.db'}", TRIAGE_CONFIG=str(config_path))
    proc = subprocess.Popen([sys.executable, "-m", "triage.cli", "worker", "--metrics-port", str(port)], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def scrape() -> str | None:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return None

    try:
        text = wait_for(scrape, timeout=60, what="the worker's metrics")
        assert "triage_outbox_depth 0.0" in text and "triage_sla_breaches_total 0.0" in text
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)
    assert proc.returncode == 0
