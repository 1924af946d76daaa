"""Issue 10: Sign in with Slack, the dashboard's access rules, /api/sla/summary and /api/requests.csv over HTTP."""

from __future__ import annotations

import csv
import io
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.conftest import LEADER, OUTSIDER, SA1
from tests.leaders.conftest import API_TOKEN, CLIENT_ID, sign_in

WEEK = {"since": "2026-11-02", "until": "2026-11-08"}
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


def test_api_refuses_without_a_token_or_session(web):
    for path in ("/api/sla/summary", "/api/requests.csv", "/api/alignment"):
        assert web.get(path).status_code == 401
        assert web.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = web.get("/api/sla/summary")
    assert "Bearer" in r.json()["detail"] and r.headers["www-authenticate"] == "Bearer"


def test_summary_over_http_with_the_token(web):
    r = web.get("/api/sla/summary", params=WEEK, headers=BEARER)
    assert r.status_code == 200
    body = r.json()
    assert (body["since"], body["until"]) == ("2026-11-02", "2026-11-08")
    assert body["totals"]["received"] == 8 and body["totals"]["attainment"] == 0.5
    assert {q["queue"] for q in body["queues"]} == {"amer-east", "emea"}
    assert set(body["breach_reasons"]) >= {"capacity", "no_context", "late_triage", "other"}
    one = web.get("/api/sla/summary", params={**WEEK, "queue": "emea"}, headers=BEARER).json()
    assert one["totals"]["received"] == 3


def test_bad_filters_get_400_with_the_reason(web):
    r = web.get("/api/sla/summary", params={"queue": "mars"}, headers=BEARER)
    assert r.status_code == 400 and "unknown queue 'mars'" in r.json()["detail"] and "amer-east" in r.json()["detail"]
    r = web.get("/api/requests.csv", params={"since": "last tuesday"}, headers=BEARER)
    assert r.status_code == 400 and "ISO date" in r.json()["detail"]
    r = web.get("/api/sla/summary", params={"since": "2026-11-08", "until": "2026-11-01"}, headers=BEARER)
    assert r.status_code == 400 and "before" in r.json()["detail"]


def test_csv_has_a_row_per_request_and_neutralises_formulas(web, history):
    services, ids = history
    import sqlalchemy as sa

    from triage.models import Request
    with services.engine.begin() as c:  # an AE typed a formula as the customer's name
        c.execute(sa.update(Request).where(Request.id == ids["R1"]).values(customer_name="=HYPERLINK(\"x\")"))
    r = web.get("/api/requests.csv", params=WEEK, headers=BEARER)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 8
    by_ref = {row["reference"]: row for row in rows}
    r1, r3 = by_ref[f"SAR-{ids['R1']}"], by_ref[f"SAR-{ids['R3']}"]
    assert r1["customer_name"] == "'=HYPERLINK(\"x\")"
    assert (r1["hours_to_allocate"], r1["allocated_within_sla"], r1["breached"]) == ("6.00", "yes", "no")
    assert (r3["hours_to_allocate"], r3["allocated_within_sla"], r3["breach_reason"]) == ("28.00", "no", "late_triage")
    assert by_ref[f"SAR-{ids['R5']}"]["breached"] == "yes"


def test_openapi_documents_the_summary(web):
    schema = web.get("/openapi.json").json()
    assert "/api/sla/summary" in schema["paths"] and "/api/requests.csv" in schema["paths"]
    params = {p["name"] for p in schema["paths"]["/api/sla/summary"]["get"]["parameters"]}
    assert params == {"queue", "since", "until"}
    assert "attainment" in schema["components"]["schemas"]["Figures"]["properties"]
    assert web.get("/docs").status_code == 200


def test_sign_in_with_slack_as_a_leader(web, fake_slack):
    login = web.get("/auth/slack/login", follow_redirects=False)
    target = urlsplit(login.headers["location"])
    q = parse_qs(target.query)
    assert q["client_id"] == [CLIENT_ID] and "openid" in q["scope"][0] and len(q["state"][0]) >= 20
    assert "httponly" in login.headers["set-cookie"].lower()

    back = sign_in(web, fake_slack, LEADER)
    assert back.status_code == 303 and back.headers["location"] == "/dashboard"
    cookie = back.headers["set-cookie"].lower()
    assert "triage_session=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    assert "secure" not in cookie  # plain http here; see the https test
    token_call = fake_slack.calls_to("openid.connect.token")[-1]
    assert token_call.headers["authorization"].startswith("Basic ")  # the client secret never in the URL
    page = web.get("/dashboard")
    assert page.status_code == 200 and "Lee Leader" in page.text and "Late and waiting now" in page.text
    assert web.get("/api/sla/summary", params=WEEK).status_code == 200  # the session reads the API too


def test_a_forged_or_missing_state_is_refused(web, fake_slack):
    fake_slack.openid_sign_in_as(LEADER)
    web.get("/auth/slack/login", follow_redirects=False)
    r = web.get("/auth/slack/callback", params={"code": "whatever", "state": "not-the-state"})
    assert r.status_code == 400 and "not started here" in r.text
    assert "triage_session" not in r.headers.get("set-cookie", "")
    fresh = web.__class__(web.app)  # another browser, which never started a sign-in
    assert fresh.get("/auth/slack/callback", params={"code": "x", "state": "y"}).status_code == 400


def test_a_non_leader_sees_a_403_page_and_no_figures(web, fake_slack):
    assert sign_in(web, fake_slack, SA1).status_code == 303
    page = web.get("/dashboard")
    assert page.status_code == 403 and "Leaders only" in page.text and "Per queue" not in page.text
    assert web.get("/api/sla/summary").status_code == 403
    assert web.get("/api/requests.csv").status_code == 403


def test_signed_out_visitors_get_the_sign_in_page(web):
    page = web.get("/dashboard")
    assert page.status_code == 200 and "Sign in with Slack" in page.text and "Per queue" not in page.text


def test_sign_out_needs_the_pages_token(web, fake_slack):
    sign_in(web, fake_slack, LEADER)
    forged = web.post("/auth/logout", data={"csrf": "guess"}, follow_redirects=False)
    assert forged.status_code == 403
    assert web.get("/dashboard").status_code == 200 and "Per queue" in web.get("/dashboard").text
    page = web.get("/dashboard").text
    token = page.split('name="csrf" value="')[1].split('"')[0]
    out = web.post("/auth/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    web.cookies.clear()  # TestClient keeps what the response cleared as an empty value
    assert "Sign in with Slack" in web.get("/dashboard").text
    assert 'triage_session=""' in out.headers["set-cookie"] or "max-age=0" in out.headers["set-cookie"].lower()


def test_the_session_cookie_is_secure_over_https(web, fake_slack):
    secure = web.__class__(web.app, base_url="https://testserver")
    fake_slack.openid_sign_in_as(OUTSIDER)
    login = secure.get("/auth/slack/login", follow_redirects=False)
    assert "secure" in login.headers["set-cookie"].lower()
    slack = httpx.get(login.headers["location"], follow_redirects=False)
    back = secure.get(slack.headers["location"].removeprefix("https://testserver"), follow_redirects=False)
    assert back.status_code == 303 and "secure" in back.headers["set-cookie"].lower()


def test_user_text_is_escaped_on_the_page(web, fake_slack, history):
    services, ids = history
    import sqlalchemy as sa

    from triage.models import Request
    with services.engine.begin() as c:
        c.execute(sa.update(Request).where(Request.id == ids["R5"]).values(
            customer_name="<script>alert(1)</script>", slack_ts="1762387200.000100",
            gitlab_url="javascript:alert(1)"))
    sign_in(web, fake_slack, LEADER)
    page = web.get("/dashboard", params={"period": "30d"}).text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "javascript:alert" not in page
    assert "https://slack.com/archives/C0EMEA001/p1762387200000100" in page


def test_dashboard_filters_and_a_bad_one(web, fake_slack):
    sign_in(web, fake_slack, LEADER)
    page = web.get("/dashboard", params={"queue": "emea", "since": "2026-11-02", "until": "2026-11-08"})
    assert page.status_code == 200 and 'id="attainment">–' in page.text and "Hooli" in page.text
    bad = web.get("/dashboard", params={"queue": "mars"})
    assert bad.status_code == 400 and "unknown queue" in bad.text and "Back to the dashboard" in bad.text


def test_sign_in_not_configured_says_what_to_set(history, history_settings, fake_slack):
    from fastapi.testclient import TestClient

    from triage.web import create_app

    app = create_app(history_settings, migrate=False, worker=False)  # no client id, secret or session secret
    with TestClient(app) as client:
        page = client.get("/dashboard")
        assert page.status_code == 200 and "TRIAGE_SESSION_SECRET" in page.text
        login = client.get("/auth/slack/login")
        assert login.status_code == 503 and "SLACK_CLIENT_ID" in login.text
        assert client.get("/api/sla/summary").status_code == 401
