"""Slack's API unreachable from the app (an egress outage) while Slack still delivers requests: what the AEs
submit is acknowledged and stored, and nothing is a 500; once the API answers again, the app learns who
its bot is and its calls go through."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from fastapi.testclient import TestClient
from slack_sdk.web.async_client import AsyncWebClient

from tests.conftest import (
    BOT_TOKEN,
    SIGNING_SECRET,
    make_settings,
    post_slack_payload,
    shortcut_payload,
    submission_payload,
)
from tests.flows.test_intake import GOOD
from triage.db import make_engine
from triage.migrate import upgrade
from triage.services import Services
from triage.slack.authorize import BotAuthorize
from triage.slack.listeners.views import form
from triage.web import create_app


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def unreachable(sqlite_url, config_path, fake_gitlab):
    settings = make_settings(
        DATABASE_URL=sqlite_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=f"http://127.0.0.1:{_closed_port()}/api/",
        TRIAGE_EMBEDDED_WORKER=False)
    upgrade(sqlite_url)
    engine = make_engine(sqlite_url)
    with TestClient(create_app(settings, migrate=False, worker=False), raise_server_exceptions=False) as c:
        yield c, Services(settings, engine)
    engine.dispose()


def test_a_submission_is_stored_and_acknowledged_while_slacks_api_is_unreachable(unreachable, fake_slack, caplog):
    client, services = unreachable
    caplog.set_level(logging.WARNING, logger="triage.slack.authorize")
    # The shortcut is acknowledged (its modal can't open: views.open has nowhere to go), not a 500.
    assert post_slack_payload(client, shortcut_payload(fake_slack)).status_code == 200
    view = form(services, request_type="opportunity", initial={}, private_metadata="")
    view["id"] = "V0DOWN0001"
    r = post_slack_payload(client, submission_payload(view, GOOD))
    assert r.status_code == 200 and r.json()["response_action"] == "update"
    assert "is saved" in r.text
    stored = services.get(1)
    assert stored is not None and stored.customer_name == GOOD["customer_name"]
    # One line says what is wrong, not a traceback per request.
    lines = [rec for rec in caplog.records if "auth.test" in rec.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None
    assert "requests are still acknowledged and stored" in lines[0].getMessage()
    # The modal that could not open is one line too, with the error id the admins are given.
    [opened] = [rec for rec in caplog.records if "sa_request could not reach Slack's API" in rec.getMessage()]
    assert "ClientConnectorError" in opened.getMessage() and "error id" in opened.getMessage()
    assert not [rec for rec in caplog.records if rec.exc_info]


def test_the_bots_identity_is_learnt_once_the_api_answers(fake_slack):
    # Each lookup runs in the background; a failed one is tried again only after retry_seconds.
    now = [0.0]
    down = AsyncWebClient(token=BOT_TOKEN, base_url=f"http://127.0.0.1:{_closed_port()}/api/")
    authorize = BotAuthorize(down, retry_seconds=30, clock=lambda: now[0])

    async def request() -> dict:
        result = await authorize(context={}, enterprise_id=None, team_id="T0TEAM", user_id="U0AE00001")
        for _ in range(200):  # let the background lookup finish (a closed port or a local fake: at once)
            await asyncio.sleep(0.01)
            if authorize._task is None or authorize._task.done():
                break
        return result

    async def scenario() -> None:
        first = await request()
        assert first.bot_token == BOT_TOKEN and first.user_id == "U0AE00001" and first.bot_user_id is None
        assert authorize.identity is None
        down.base_url = fake_slack.url  # the API is back, but the next try is 30 s away
        now[0] = 10
        await request()
        assert authorize.identity is None and not fake_slack.calls_to("auth.test")
        now[0] = 31
        await request()
        later = await request()
        assert len(fake_slack.calls_to("auth.test")) == 1  # kept once known: no call per request
        assert authorize.identity is not None and later.bot_user_id == authorize.identity["user_id"]
        assert later.bot_token == BOT_TOKEN and later.team_id == authorize.identity["team_id"]

    asyncio.run(scenario())
