"""Schemathesis against the app's own OpenAPI schema (/openapi.json): whatever the schema allows, and
whatever it does not, is answered without a 5xx or a stack trace, signed in (bearer token) or not."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import BOT_TOKEN, GITLAB_TOKEN, SIGNING_SECRET, WEBHOOK_SECRET, make_settings
from tests.leaders import seed as seeded
from triage.migrate import upgrade
from triage.web import create_app

API_TOKEN = "fuzz-api-token-0123456789"


@pytest.fixture
def fuzz_app(sqlite_url, config_path):
    upgrade(sqlite_url)
    s = make_settings(DATABASE_URL=sqlite_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
                      SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL="http://127.0.0.1:9/api/",
                      GITLAB_URL="http://127.0.0.1:9", GITLAB_TOKEN=GITLAB_TOKEN,
                      GITLAB_WEBHOOK_SECRET=WEBHOOK_SECRET, TRIAGE_EMBEDDED_WORKER=False,
                      TRIAGE_API_TOKEN=API_TOKEN, TRIAGE_SESSION_SECRET="fuzz-session-secret")
    app = create_app(s, migrate=False, worker=False)
    seeded.seed(app.state.services)  # a week of requests, so the reports have rows to compute over
    return app


def assert_clean(response) -> None:
    assert response.status_code < 500, (response.status_code, response.text[:500])
    body = response.text
    assert "Traceback" not in body and 'File "' not in body, body[:500]


def operations(app):
    """Every operation of the app's /openapi.json (schemathesis validates the schema itself on the way)."""
    return [result.ok() for result in schemathesis.openapi.from_asgi("/openapi.json", app).get_all_operations()]


def test_no_server_error_nor_traceback(fuzz_app):
    # Driven by hand rather than by schemathesis' pytest plugin, whose collection hook does not run under
    # this pytest version; the strategies and calls are schemathesis' own.
    ops = operations(fuzz_app)
    assert ops
    for op in ops:
        @given(case=op.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case):
            signed = case.call(headers={"Authorization": f"Bearer {API_TOKEN}"})
            assert_clean(signed)
            if case.path.startswith("/api/"):
                # The documented status codes, content types and response shapes. Not "schema-valid data is
                # accepted": the schema says `queue` is a string and the dates are strings, while only the
                # configured queue keys and ISO dates are valid, refused with the documented 400 and a
                # reason (the keys depend on the config, so they are not in the schema).
                case.validate_response(signed, excluded_checks=[positive_data_acceptance])
            assert_clean(case.call())  # anonymous: refused with a reason, never a crash
            assert_clean(case.call(headers={"Authorization": "Bearer wrong"}))

        fuzz()


def test_schema_lists_the_json_routes(fuzz_app):
    from fastapi.testclient import TestClient

    with TestClient(fuzz_app) as c:
        paths = c.get("/openapi.json").json()["paths"]
    assert "/healthz" in paths
