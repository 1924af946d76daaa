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
