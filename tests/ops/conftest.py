"""The command line's environment: a SQLite file in the test's directory, the fake Slack and GitLab."""

from __future__ import annotations

import pytest

from tests.conftest import BOT_TOKEN, GITLAB_TOKEN, SIGNING_SECRET


@pytest.fixture
def env(monkeypatch, tmp_path, config_path, fake_slack, fake_gitlab):
    monkeypatch.chdir(tmp_path)
    for k, v in {"DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "TRIAGE_CONFIG": str(config_path),
                 "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                 "SLACK_API_URL": fake_slack.url, "GITLAB_URL": fake_gitlab.url,
                 "GITLAB_TOKEN": GITLAB_TOKEN}.items():
        monkeypatch.setenv(k, v)
    return monkeypatch
