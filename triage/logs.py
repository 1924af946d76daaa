"""Logging: one format for the app and uvicorn, text or JSON lines, secrets masked, library noise quiet.

    LOG_LEVEL   DEBUG, INFO (default), WARNING, ERROR
    LOG_FORMAT  text (default): `2026-01-05 14:03:07,120 INFO triage.access: POST /slack/events 200 3.1ms`
                json: one object per line, {"ts", "level", "logger", "message", ...the line's fields}

Every handler masks the values of the secret settings (tokens, signing secret, the database password) and
anything shaped like a Slack or GitLab token, in messages, fields and tracebacks alike.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from triage.config import Settings

# Slack tokens (xoxb-, xoxp-, xapp-...) and GitLab tokens (glpat-, gloas-...): masked even when not ours.
TOKEN_SHAPES = re.compile(r"\b(?:xox[abposre]|xapp|glpat|gloas|gldt|glrt|glptt|glft|glsoat)-[A-Za-z0-9_-]{4,}")
# The ticket in a Socket Mode websocket URL (wss://wss-primary.slack.com/link/?ticket=...) opens a connection.
TICKET = re.compile(r"(ticket=)[^&\s\"']+")
MASK = "***"

# (logger name prefix, message prefix) of INFO/WARNING lines that say nothing an operator can act on.
NOISE = (
    ("alembic.runtime.migration", "Context impl"),
    ("alembic.runtime.plugins", "setup plugin"),
    ("alembic.runtime.migration", "Will assume"),
    ("slack_bolt", "As you gave `client` as well, `token` will be unused"),
    ("slack_bolt", "As `installation_store` or `authorize` has been used"),
)

# The attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName",
                                                                         "color_message"}  # uvicorn's ANSI copy
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def secrets_of(settings: Settings) -> list[str]:
    """Every secret setting's value, and the database password."""
    values = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr) and value.get_secret_value():
            values.append(value.get_secret_value())
    try:
        from sqlalchemy.engine import make_url

        password = make_url(settings.database_url).password
        if password:
            values.append(str(password))
    except Exception:  # noqa: BLE001, S110 - a malformed URL has no password to hide; the CLI reports it
        pass
    return values


class Redact(logging.Filter):
    """Masks secrets in the message, the `extra=` fields and the traceback of each record."""

    def __init__(self, secrets: list[str] | tuple[str, ...] = ()) -> None:
        super().__init__()
        # Longest first, so a secret that contains another is masked whole. Very short values (a test's
        # "x") would mask ordinary words, and are no secret worth the name anyway.
        self.secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for s in self.secrets:
            if s in text:
                text = text.replace(s, MASK)
        # Each pattern needs a substring a plain `in` finds at a fraction of a search's cost: most lines
        # (one per HTTP request) have neither.
        if "ticket=" in text:
            text = TICKET.sub(r"\g<1>" + MASK, text)
        if "-" in text:
            text = TOKEN_SHAPES.sub(lambda m: m.group(0).split("-", 1)[0] + "-" + MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        for logger, prefix in NOISE:
            if record.levelno < logging.ERROR and record.name.startswith(logger) \
                    and str(record.msg).startswith(prefix):
                return False
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, the record's `extra=` fields, and `exc`."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        return json.dumps(out, ensure_ascii=False)


def level_of(settings: Settings) -> int:
    level = logging.getLevelName(str(settings.log_level).strip().upper())
    return level if isinstance(level, int) else logging.INFO


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of each line (not the one at start-up)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def make_handler(settings: Settings, stream: Any = None) -> logging.Handler:
    handler = logging.StreamHandler(stream) if stream is not None else _Stderr()
    json_lines = str(settings.log_format).strip().lower() == "json"
    handler.setFormatter(JsonFormatter() if json_lines else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(Redact(secrets_of(settings)))
    handler.set_name("triage")
    return handler


def configure_logging(settings: Settings, stream: Any = None) -> None:
    """Route every logger (the app's, uvicorn's, the libraries') through one masked handler on the root."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if h.get_name() == "triage":
            root.removeHandler(h)
    root.addHandler(make_handler(settings, stream))
    level = level_of(settings)
    root.setLevel(level)
    # Libraries that are chatty at INFO: their INFO lines are about their own mechanics.
    quiet = logging.WARNING if level > logging.DEBUG else logging.DEBUG
    for name in ("httpx", "urllib3", "gitlab", "slack_sdk.socket_mode", "aiohttp.access"):
        logging.getLogger(name).setLevel(max(quiet, level))
    if str(settings.log_level).strip().upper() not in ("", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        logging.getLogger(__name__).warning("LOG_LEVEL=%s is not a level; using INFO", settings.log_level)


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's loggers without handlers of their own: their lines go to the root handler above, in the
    same format and through the same masking (configure_logging must have run)."""
    level = logging.getLevelName(level_of(settings))
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {name: {"handlers": [], "propagate": True, "level": level}
                    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")},
    }
