"""Fixtures: fake Slack and GitLab HTTP servers on 127.0.0.1, settings pointing at them, signed requests."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from tests.fakes.gitlab_api import FakeGitLab
from tests.fakes.slack_api import FakeSlack
from triage.config import Settings
from triage.migrate import upgrade
from triage.web import create_app

PAYLOADS = Path(__file__).parent / "payloads"
SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test"
GITLAB_TOKEN = "glpat-test"
WEBHOOK_SECRET = "hook-secret"
PG_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

AE = "U0AE00001"
SA1, SA2, SA3 = "U0SA00001", "U0SA00002", "U0SA00003"
LEADER = "U0LEAD001"
OUTSIDER = "U0OUT0001"
AMER_CHANNEL, EMEA_CHANNEL, LEADERS_CHANNEL = "C0AMEREAST", "C0EMEA001", "C0LEADERS"
SA_GROUP = "S0AMEREAST"

CONFIG_TOML = f"""
[slack]
leaders = ["{LEADER}"]
leaders_channel = "{LEADERS_CHANNEL}"

[sla]
clock = "calendar"
reminders = [0.5, 0.75]

[sla.targets]
opportunity = "24h"
follow_up = "48h"
security_assessment = "48h"
event = "5d"
expedite = "24h"

[[queues]]
key = "amer-east"
name = "AMER East"
gitlab_project = "sa-triage-boards/amer-east"
slack_channel = "{AMER_CHANNEL}"
timezone = "America/New_York"
holidays = "US"
sa_usergroup = "{SA_GROUP}"

[[queues]]
key = "emea"
name = "EMEA"
gitlab_project = "sa-triage-boards/emea"
slack_channel = "{EMEA_CHANNEL}"
timezone = "Europe/London"
holidays = "GB"
sa_users = ["{SA2}", "{SA3}"]
"""


def load_payload(name: str) -> dict[str, Any]:
    return json.loads((PAYLOADS / name).read_text())


def wait_for(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    """Wait until the app's background task has made its call (synchronisation, not waiting out time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# ------------------------------------------------------------------ fake servers


@pytest.fixture(scope="session")
def _slack_server() -> Iterator[FakeSlack]:
    with FakeSlack(token=BOT_TOKEN) as fake:
        yield fake


@pytest.fixture
def fake_slack(_slack_server: FakeSlack) -> FakeSlack:
    _slack_server.reset()
    for uid, name, email, tz in (
        (AE, "Alex Account", "alex@example.com", "America/Los_Angeles"),
        (SA1, "Sam Architect", "sam@example.com", "America/New_York"),
        (SA2, "Sasha Two", "sasha@example.com", "Europe/London"),
        (SA3, "Sid Three", None, "Europe/London"),
        (LEADER, "Lee Leader", "lee@example.com", "America/New_York"),
        (OUTSIDER, "Otto Outside", "otto@example.com", "America/Chicago"),
    ):
        _slack_server.add_user(uid, name=name.split()[0].lower(), real_name=name, email=email, tz=tz)
    for channel in (AMER_CHANNEL, EMEA_CHANNEL, LEADERS_CHANNEL):
        _slack_server.add_channel(channel)
    _slack_server.add_usergroup(SA_GROUP, [SA1, SA2])
    return _slack_server


@pytest.fixture
def fake_gitlab() -> Iterator[FakeGitLab]:
    with FakeGitLab(token=GITLAB_TOKEN) as fake:
        _seed_gitlab(fake)
        yield fake


def _seed_gitlab(_gitlab_server: FakeGitLab) -> None:
    _gitlab_server.add_project("sa-triage-boards/amer-east", id=101)
    _gitlab_server.add_project("sa-triage-boards/emea", id=102)
    _gitlab_server.add_user("sam", email="sam@example.com", public_email="sam@example.com", name="Sam Architect",
                           id=501)
    _gitlab_server.add_user("sasha", email="sasha@example.com", public_email="sasha@example.com", name="Sasha Two",
                           id=502)
    _gitlab_server.add_user("sid", email=None, name="Sid Three", id=503)


# ------------------------------------------------------------------ databases


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'triage.db'}"


def _pg_admin_engine() -> sa.Engine:
    return sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)  # survives a restart


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    admin = _pg_admin_engine()
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except Exception as e:
        admin.dispose()
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {PG_URL} is required in CI and not reachable: {e.__class__.__name__}")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL} ({e.__class__.__name__}); "
                    "set TRIAGE_TEST_POSTGRES_URL to run these tests")
    name = f"triage_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Both databases: SQLite by default, PostgreSQL as in production."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'triage.db'}"
    return request.getfixturevalue("pg_url")


# ------------------------------------------------------------------ settings and app


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "triage.toml"
    path.write_text(CONFIG_TOML)
    return path


def make_settings(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **overrides)


@pytest.fixture
def settings(sqlite_url: str, config_path: Path, fake_slack: FakeSlack, fake_gitlab: FakeGitLab) -> Settings:
    return make_settings(
        DATABASE_URL=sqlite_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.url, GITLAB_URL=fake_gitlab.url,
        GITLAB_TOKEN=GITLAB_TOKEN, GITLAB_WEBHOOK_SECRET=WEBHOOK_SECRET, TRIAGE_EMBEDDED_WORKER=False,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The real ASGI app (no embedded worker: tests drive it with worker.run_once)."""
    upgrade(settings.database_url)
    app = create_app(settings, migrate=False, worker=False)
    with TestClient(app) as c:
        yield c


# ------------------------------------------------------------------ signed Slack requests


def sign(body: bytes, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    base = f"v0:{ts}:".encode() + body
    sig = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": sig}


def post_slack_payload(client: TestClient, payload: dict[str, Any], *, headers: dict[str, str] | None = None,
                       **sign_kw: Any):
    body = urlencode({"payload": json.dumps(payload)}).encode()
    h = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, **sign_kw), **(headers or {})}
    return client.post("/slack/events", content=body, headers=h)


def post_slack_form(client: TestClient, form: dict[str, str], **sign_kw: Any):
    body = urlencode(form).encode()
    h = {"Content-Type": "application/x-www-form-urlencoded", **sign(body, **sign_kw)}
    return client.post("/slack/events", content=body, headers=h)


def shortcut_payload(fake_slack: FakeSlack, *, user: str = AE, callback_id: str = "sa_request") -> dict:
    p = load_payload("global_shortcut.json")
    p.update(callback_id=callback_id, trigger_id=fake_slack.new_trigger_id())
    p["user"] = {"id": user, "username": "alex", "team_id": p["team"]["id"]}
    return p


def _state_entry(field: str, element: dict[str, Any], value: Any) -> dict[str, Any]:
    kind = element["type"]
    if kind in ("plain_text_input", "url_text_input"):
        return {"type": kind, "value": value}
    if kind == "static_select":
        return {"type": kind, "selected_option": None if value is None else
                {"text": {"type": "plain_text", "text": str(value)}, "value": value}}
    if kind in ("multi_static_select", "checkboxes"):
        return {"type": kind, "selected_options": [
            {"text": {"type": "plain_text", "text": v}, "value": v} for v in (value or [])]}
    if kind == "datepicker":
        return {"type": kind, "selected_date": value}
    if kind == "datetimepicker":
        return {"type": kind, "selected_date_time": value}
    raise AssertionError(f"no state shape for {kind}")


def submission_payload(view: dict[str, Any], values: dict[str, Any], *, user: str = AE,
                       view_id: str | None = None) -> dict[str, Any]:
    """A view_submission for the modal the app opened (`view` as the fake Slack holds it), filled in."""
    p = load_payload("view_submission_bolt_minimal.json")
    v = copy.deepcopy(view)
    v.setdefault("id", view_id or "V" + uuid.uuid4().hex[:10].upper())
    if view_id:
        v["id"] = view_id
    state: dict[str, dict[str, Any]] = {}
    for block in v["blocks"]:
        if block.get("type") != "input":
            continue
        el = block["element"]
        state[block["block_id"]] = {el["action_id"]: _state_entry(block["block_id"], el,
                                                                     values.get(block["block_id"]))}
    v["state"] = {"values": state}
    p["view"] = v
    p["user"] = {"id": user, "username": "alex", "name": "alex", "team_id": p["team"]["id"]}
    return p
