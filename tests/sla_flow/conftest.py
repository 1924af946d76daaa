"""Helpers for the SLA sweep flows: file requests, read the thread, the leaders' channel and the audit trail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session, select

from tests.conftest import (
    AE,
    AMER_CHANNEL,
    BOT_TOKEN,
    CONFIG_TOML,
    GITLAB_TOKEN,
    LEADERS_CHANNEL,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    make_settings,
)
from tests.flows.test_intake import GOOD
from triage.config import Settings
from triage.core import fields
from triage.db import make_engine
from triage.models import Request, RequestEvent
from triage.services import Services

PROJECT = "sa-triage-boards/amer-east"


def settings_for(database_url: str, config_path: Path, fake_slack, fake_gitlab) -> Settings:
    """Settings as the `settings` fixture builds them, for another database or config (a new process)."""
    return make_settings(
        DATABASE_URL=database_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.url, GITLAB_URL=fake_gitlab.url,
        GITLAB_TOKEN=GITLAB_TOKEN, GITLAB_WEBHOOK_SECRET=WEBHOOK_SECRET, TRIAGE_EMBEDDED_WORKER=False,
    )


@pytest.fixture
def weekdays_config(tmp_path: Path) -> Path:
    path = tmp_path / "weekdays.toml"
    path.write_text(CONFIG_TOML.replace('clock = "calendar"', 'clock = "weekdays"'))
    return path


@pytest.fixture
def services_of() -> Iterator:
    """Services(settings, engine) on its own engine, disposed after the test."""
    engines = []

    def make(settings: Settings) -> Services:
        engine = make_engine(settings.database_url)
        engines.append(engine)
        return Services(settings, engine)

    yield make
    for e in engines:
        e.dispose()


def submit_direct(services: Services, *, now: datetime, key: str, **overrides: Any) -> int:
    """Store a request as the modal's submission would, at an explicit `now` (the HTTP path reads the clock)."""
    result = fields.validate({**GOOD, **overrides}, now=now, queue_keys=services.config.queue_keys)
    assert not result.errors, result.errors
    return services.submit(submission_key=key, requester=AE, cleaned=result.cleaned, now=now).request_id


def request_row(settings: Settings, request_id: int) -> Request:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            return s.get(Request, request_id)
    finally:
        engine.dispose()


def latest_request(settings: Settings) -> Request:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            return s.exec(select(Request).order_by(Request.id.desc()).limit(1)).one()
    finally:
        engine.dispose()


def events(settings: Settings, request_id: int, *kinds: str) -> list[RequestEvent]:
    engine = make_engine(settings.database_url)
    try:
        with Session(engine) as s:
            q = select(RequestEvent).where(RequestEvent.request_id == request_id)
            if kinds:
                q = q.where(RequestEvent.kind.in_(kinds))
            return list(s.exec(q.order_by(RequestEvent.id)).all())
    finally:
        engine.dispose()


def execute(settings: Settings, statement: sa.Executable) -> None:
    engine = make_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(statement)
    finally:
        engine.dispose()


def is_sla_message(text: str) -> bool:
    return "SLA is used" in text or "missed its" in text


def card_ts(fake_slack, request_id: int, channel: str = AMER_CHANNEL) -> str:
    for m in fake_slack.messages_in(channel, top_level_only=True):
        meta = m.get("metadata") or {}
        if str((meta.get("event_payload") or {}).get("request_id")) == str(request_id):
            return m["ts"]
    raise AssertionError(f"no card for request {request_id}")


def sla_replies(fake_slack, request_id: int, channel: str = AMER_CHANNEL) -> list[str]:
    """The SLA reminders and breach notices in the request's card thread, in order."""
    ts = card_ts(fake_slack, request_id, channel)
    return [m.get("text") or "" for m in fake_slack.messages_in(channel, thread_ts=ts)
            if is_sla_message(m.get("text") or "")]


def leaders_posts(fake_slack) -> list[str]:
    return [m.get("text") or "" for m in fake_slack.messages_in(LEADERS_CHANNEL)]


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)
