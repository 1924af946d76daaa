"""Fixtures for the leaders' views: a seeded history on either database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest

from tests.conftest import BOT_TOKEN, SIGNING_SECRET, make_settings
from tests.leaders import seed as seeded
from triage.config import Settings
from triage.db import make_engine
from triage.migrate import upgrade
from triage.services import Services
from triage.services.summary import Period

WEEK = Period(date(2026, 11, 2), date(2026, 11, 8), __import__("zoneinfo").ZoneInfo("UTC"))


@pytest.fixture
def history_settings(db_url, config_path) -> Settings:
    return make_settings(DATABASE_URL=db_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
                         SLACK_SIGNING_SECRET=SIGNING_SECRET, TRIAGE_EMBEDDED_WORKER=False)


@pytest.fixture
def history(history_settings) -> Iterator[tuple[Services, dict[str, int]]]:
    """The seeded week (tests/leaders/seed.py) in a migrated database."""
    upgrade(history_settings.database_url)
    engine = make_engine(history_settings.database_url)
    services = Services(history_settings, engine)
    ids = seeded.seed(services)
    yield services, ids
    engine.dispose()


CLIENT_ID, CLIENT_SECRET = "1234.5678", "oauth-client-secret"
API_TOKEN, SESSION_SECRET = "reporting-token-0123456789", "session-secret-for-tests"


def web_settings(history_settings: Settings, fake_slack) -> Settings:
    return make_settings(
        DATABASE_URL=history_settings.database_url, TRIAGE_CONFIG=str(history_settings.triage_config),
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.url,
        TRIAGE_EMBEDDED_WORKER=False, TRIAGE_API_TOKEN=API_TOKEN, TRIAGE_SESSION_SECRET=SESSION_SECRET,
        SLACK_CLIENT_ID=CLIENT_ID, SLACK_CLIENT_SECRET=CLIENT_SECRET,
        SLACK_AUTHORIZE_URL=fake_slack.openid_authorize_url)


@pytest.fixture
def web(history, history_settings, fake_slack):
    """The real app over the seeded week, with sign-in configured against the fake Slack."""
    from fastapi.testclient import TestClient
    from freezegun import freeze_time

    from triage.web import create_app

    fake_slack.openid_client(CLIENT_ID, CLIENT_SECRET)
    app = create_app(web_settings(history_settings, fake_slack), migrate=False, worker=False)
    with freeze_time(seeded.NOW), TestClient(app) as client:
        yield client


def sign_in(client, fake_slack, user: str):
    """The whole Sign in with Slack round trip: the app's login, Slack's authorize page, the callback."""
    import httpx

    fake_slack.openid_sign_in_as(user)
    login = client.get("/auth/slack/login", follow_redirects=False)
    assert login.status_code == 303, login.text
    slack = httpx.get(login.headers["location"], follow_redirects=False)  # the real (fake) Slack page
    assert slack.status_code == 302
    back = slack.headers["location"]
    assert back.startswith("http://testserver/auth/slack/callback?")
    return client.get(back.removeprefix("http://testserver"), follow_redirects=False)


@pytest.fixture
def slack_app(history, history_settings, fake_slack):
    """The real app over the seeded week for signed Slack requests; the clock runs on from NOW (tick=True), so
    Bolt's background work and the fake's HTTP round trips behave as in production."""
    from fastapi.testclient import TestClient
    from freezegun import freeze_time

    from triage.web import create_app

    app = create_app(web_settings(history_settings, fake_slack), migrate=False, worker=False)
    with freeze_time(seeded.NOW, tick=True), TestClient(app) as client:
        yield client


def post_event(client, event: dict):
    import json as _json

    from tests.conftest import sign

    body = _json.dumps({"type": "event_callback", "team_id": "T0001", "api_app_id": "A0TRIAGE",
                        "event": event, "event_id": "Ev" + event.get("user", "X"), "event_time": 1762689600,
                        "authorizations": [{"team_id": "T0001", "user_id": "U0BOT", "is_bot": True}]}).encode()
    return client.post("/slack/events", content=body, headers={"Content-Type": "application/json", **sign(body)})


def slash(client, user: str, text: str = ""):
    from tests.conftest import post_slack_form

    return post_slack_form(client, {
        "token": "legacy", "team_id": "T0001", "team_domain": "example", "channel_id": "C0LEADERS",
        "channel_name": "leaders", "user_id": user, "user_name": "someone", "command": "/sa-sla", "text": text,
        "api_app_id": "A0TRIAGE", "response_url": "https://hooks.slack.com/commands/T0001/1/x",
        "trigger_id": "1.1.x"})
