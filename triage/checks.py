"""Operator checks that `triage check` and `triage setup --dry-run` share: the database, the Socket Mode
token, and the setup plan when GitLab can't be asked."""

from __future__ import annotations

from collections.abc import Callable

from triage.config import Settings
from triage.core.labels import BOARD_LISTS, LABEL_SPECS
from triage.db import DatabaseUnavailable, check_database, where

Line = Callable[..., None]  # line(ok, what, detail="")


def database(settings: Settings, line: Line) -> None:
    try:
        check_database(settings.database_url)
    except DatabaseUnavailable as e:
        line(False, "database", str(e))
        return
    line(True, "database", f"{where(settings.database_url)} reachable")
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from triage.db import make_engine
    from triage.migrate import alembic_config

    heads = set(ScriptDirectory.from_config(alembic_config(settings.database_url)).get_heads())
    engine = make_engine(settings.database_url)
    try:
        with engine.connect() as conn:
            current = set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
    # Not a failure: serve, worker and migrate all bring the schema up to date before they start.
    line(True, "database schema", "up to date" if current == heads else
         "not yet at the latest version: `triage migrate` (or serve, or worker) will apply it")


def socket_mode_token(settings: Settings, line: Line) -> None:
    """With SLACK_APP_TOKEN set, ask Slack for a Socket Mode URL with it (apps.connections.open), as serve
    will; the URL is thrown away unused."""
    if not settings.slack_app_token:
        return
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    from triage.slack.socket_mode import describe

    client = WebClient(base_url=settings.slack_api_url, timeout=10, retry_handlers=[])
    try:
        client.apps_connections_open(app_token=settings.slack_app_token.get_secret_value())
    except SlackApiError as e:
        line(False, "slack socket mode", describe(e))
        return
    except Exception as e:  # noqa: BLE001 - URLError, timeouts, SlackClientError: Slack can't be reached
        line(False, "slack socket mode", f"cannot reach Slack ({e.__class__.__name__})")
        return
    line(True, "slack socket mode", "SLACK_APP_TOKEN accepted (apps.connections.open)")


def full_setup_plan() -> list[str]:
    """What `triage setup` creates on a project that has none of it yet."""
    from triage.gitlab_setup import DEFAULT_BOARD_NAME

    labels = list(dict.fromkeys([*(s.name for s in LABEL_SPECS), *BOARD_LISTS]))
    return ([f"create label '{name}'" for name in labels] + [f"create board '{DEFAULT_BOARD_NAME}'"]
            + [f"add list '{name}' to board '{DEFAULT_BOARD_NAME}'" for name in BOARD_LISTS])
