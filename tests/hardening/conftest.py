"""A real app on SQLite and on PostgreSQL (the `db_url` fixture), its server errors answered, not raised."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.conftest import (
    BOT_TOKEN,
    GITLAB_TOKEN,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    make_settings,
)
from triage.config import Settings
from triage.db import make_engine
from triage.migrate import upgrade
from triage.services import Services
from triage.web import create_app


@dataclass
class App:
    client: TestClient
    settings: Settings
    services: Services


@pytest.fixture
def app(db_url, config_path, fake_slack, fake_gitlab) -> Iterator[App]:
    settings = make_settings(
        DATABASE_URL=db_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.url, GITLAB_URL=fake_gitlab.url,
        GITLAB_TOKEN=GITLAB_TOKEN, GITLAB_WEBHOOK_SECRET=WEBHOOK_SECRET, TRIAGE_EMBEDDED_WORKER=False,
    )
    upgrade(db_url)
    engine = make_engine(db_url)
    # A 500 comes back as a 500 (as GitLab and Slack would see it), rather than raising in the test.
    with TestClient(create_app(settings, migrate=False, worker=False), raise_server_exceptions=False) as c:
        yield App(c, settings, Services(settings, engine))
    engine.dispose()
