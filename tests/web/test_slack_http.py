"""POST /slack/events at the HTTP edge (signatures, malformed bodies, url_verification) and GET /healthz."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from freezegun import freeze_time

from tests.conftest import (
    BOT_TOKEN,
    GITLAB_TOKEN,
    PAYLOADS,
    load_payload,
    make_settings,
    sign,
)
from triage.web import create_app

FORM = "application/x-www-form-urlencoded"


def _form_body(payload: object) -> bytes:
    return urlencode({"payload": payload if isinstance(payload, str) else json.dumps(payload)}).encode()


def _post(client: TestClient, body: bytes, *, content_type: str = FORM, headers: dict[str, str] | None = None,
          **sign_kw):
    h = {"Content-Type": content_type, **sign(body, **sign_kw), **(headers or {})}
    return client.post("/slack/events", content=body, headers=h)


def _shortcut_body() -> bytes:
    return _form_body(load_payload("global_shortcut.json"))


# ------------------------------------------------------------------ signatures


def test_bad_signature_is_401(client, fake_slack):
    r = _post(client, _shortcut_body(), secret="not-the-signing-secret")
    assert r.status_code == 401
    assert fake_slack.calls_to("views.open") == []  # nothing was acted on


@pytest.mark.parametrize("age", [301, 3600, -301], ids=["just-over-5-min", "an-hour", "from-the-future"])
def test_stale_timestamp_is_401_even_when_correctly_signed(client, fake_slack, age):
    r = _post(client, _shortcut_body(), timestamp=int(time.time()) - age)
    assert r.status_code == 401
    assert fake_slack.calls_to("views.open") == []


def test_recent_timestamp_within_5_minutes_is_accepted(client):
    body = _form_body({"type": "no_such_thing", "team": {"id": "T1"}})  # no listener; any non-401 will do
    r = _post(client, body, timestamp=int(time.time()) - 240)
    assert r.status_code != 401


@pytest.mark.parametrize("drop", ["X-Slack-Signature", "X-Slack-Request-Timestamp", "both"])
def test_missing_signature_headers_is_401(client, drop):
    body = _shortcut_body()
    headers = {"Content-Type": FORM, **sign(body)}
    for name in (("X-Slack-Signature", "X-Slack-Request-Timestamp") if drop == "both" else (drop,)):
        headers.pop(name)
    r = client.post("/slack/events", content=body, headers=headers)
    assert r.status_code == 401


def test_body_changed_after_signing_is_401(client):
    body = _shortcut_body()
    headers = {"Content-Type": FORM, **sign(body)}
    r = client.post("/slack/events", content=body + b"&extra=1", headers=headers)
    assert r.status_code == 401


def test_slack_signing_test_vector_verifies_with_the_app(fake_slack):
    """Slack's documented example request, at its own moment in time, passes the app's check."""
    vector = json.loads((PAYLOADS / "signing_test_vector.json").read_text())
    settings = make_settings(
        DATABASE_URL="sqlite://", TRIAGE_CONFIG="/nonexistent/triage.toml", SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=vector["signing_secret"], SLACK_API_URL=fake_slack.url,
        GITLAB_TOKEN=None, TRIAGE_EMBEDDED_WORKER=False,
    )
    body = vector["body"].encode()
    headers = {"Content-Type": FORM, **vector["headers"]}
    app = create_app(settings, migrate=False, worker=False)
    with freeze_time(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(vector["valid_at_unix_time"])), tick=True), \
            TestClient(app) as client:
        good = client.post("/slack/events", content=body, headers=headers)
        tampered = client.post("/slack/events", content=body.replace(b"roadrunner", b"roadrunnex"),
                               headers=headers)
    assert good.status_code != 401, good.text  # verified (the slash command itself is not one of ours)
    assert good.status_code < 500
    assert tampered.status_code == 401

    # The same signed request replayed later than five minutes is refused.
    later = vector["valid_at_unix_time"] + vector["max_clock_skew_seconds"] + 5
    with freeze_time(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(later)), tick=True), \
            TestClient(create_app(settings, migrate=False, worker=False)) as client:
        assert client.post("/slack/events", content=body, headers=headers).status_code == 401


# ------------------------------------------------------------------ malformed but signed


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (_form_body("{not json"), FORM, "payload"),
        (_form_body({"team": {"id": "T1"}, "user": {"id": "U1"}}), FORM, "type"),
        (_form_body(["a", "list"]), FORM, "type"),
        (urlencode({"hello": "world"}).encode(), FORM, "neither"),
        (b"", FORM, "neither"),
        (b"{not json", "application/json", "JSON"),
        (json.dumps({"challenge": "abc"}).encode(), "application/json", "type"),
    ],
    ids=["payload-not-json", "payload-without-type", "payload-not-object", "unknown-form", "empty",
         "json-body-not-json", "json-without-type"],
)
def test_signed_but_malformed_is_400_with_a_reason(client, body, content_type, reason):
    r = _post(client, body, content_type=content_type)
    assert r.status_code == 400, r.text
    assert reason.lower() in r.json()["error"].lower()


@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_non_utf8_body_is_refused_not_500(client, signed):
    body = b"payload=\xff\xfe\x00garbage"
    r = _post(client, body, **({} if signed else {"secret": "wrong"}))
    assert r.status_code in (400, 401)


def test_url_verification_challenge_is_echoed(client):
    payload = load_payload("url_verification.json")
    body = json.dumps(payload).encode()
    r = _post(client, body, content_type="application/json")
    assert r.status_code == 200
    assert r.json() == {"challenge": payload["challenge"]}


def test_url_verification_with_bad_signature_is_401(client):
    body = json.dumps(load_payload("url_verification.json")).encode()
    assert _post(client, body, content_type="application/json", secret="wrong").status_code == 401


# ------------------------------------------------------------------ not configured, /healthz


@pytest.fixture
def bare_client(tmp_path: Path) -> Iterator[TestClient]:
    """The app with nothing configured: no tokens and no config file (a first `triage serve`)."""
    settings = make_settings(
        DATABASE_URL=f"sqlite:///{tmp_path / 'bare.db'}", TRIAGE_CONFIG=str(tmp_path / "missing.toml"),
        SLACK_BOT_TOKEN=None, SLACK_SIGNING_SECRET=None, SLACK_APP_TOKEN=None, GITLAB_TOKEN=None,
        GITLAB_WEBHOOK_SECRET=None, TRIAGE_EMBEDDED_WORKER=False,
    )
    with TestClient(create_app(settings, worker=False)) as c:
        yield c


def test_slack_events_without_slack_config_is_503_with_reason(bare_client):
    body = _shortcut_body()
    r = _post(bare_client, body)
    assert r.status_code == 503
    assert "SLACK_BOT_TOKEN" in r.json()["error"] and "SLACK_SIGNING_SECRET" in r.json()["error"]


def test_healthz_with_zero_config_says_what_to_set(bare_client):
    r = bare_client.get("/healthz")
    assert r.status_code == 200
    h = r.json()
    assert h["database"]["ok"] is True
    assert h["slack"]["ok"] is False and h["gitlab"]["ok"] is False
    assert h["slack"]["detail"].startswith("not configured: set ")
    assert "SLACK_BOT_TOKEN" in h["slack"]["detail"] and "SLACK_SIGNING_SECRET" in h["slack"]["detail"]
    assert h["gitlab"]["detail"].startswith("not configured: set ") and "GITLAB_TOKEN" in h["gitlab"]["detail"]
    assert h["status"] != "ok"
    for part in ("database", "slack", "gitlab"):
        assert isinstance(h[part]["detail"], str) and h[part]["detail"]


def test_healthz_names_only_the_missing_slack_setting(tmp_path):
    settings = make_settings(
        DATABASE_URL=f"sqlite:///{tmp_path / 'half.db'}", TRIAGE_CONFIG=str(tmp_path / "missing.toml"),
        SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_SIGNING_SECRET=None, GITLAB_TOKEN=GITLAB_TOKEN,
        TRIAGE_EMBEDDED_WORKER=False,
    )
    with TestClient(create_app(settings, worker=False)) as c:
        h = c.get("/healthz").json()
    assert h["slack"] == {"ok": False, "detail": "not configured: set SLACK_SIGNING_SECRET"}
    assert h["gitlab"]["ok"] is True


def test_healthz_with_everything_configured_is_all_ok(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    h = r.json()
    assert h["status"] == "ok"
    assert all(h[part]["ok"] is True for part in ("database", "slack", "gitlab"))
