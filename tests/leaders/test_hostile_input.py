"""Bad input on the leaders' routes: tampered session cookies and OAuth `state`, redirects that could be
pointed elsewhere, CSRF on logout, and HTML/script or spreadsheet formulas in what AEs type. Never a 5xx,
never a stack trace, never someone else's session, never live markup."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlencode, urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer

from tests.conftest import LEADER
from tests.leaders import seed as seeded
from tests.leaders.conftest import API_TOKEN, sign_in
from triage.services import sla_sweep as sweep
from triage.web.auth import SESSION_COOKIE, STATE_COOKIE

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
HOSTILE = [
    "<script>window.__pwned=1</script>",
    '"><img src=x onerror="window.__pwned=1">',
    "</td></tr></table><iframe src=javascript:alert(1)>",
    "<svg onload=alert(1)>",
    "=HYPERLINK(\"https://evil.example\",\"click\")",
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
]
# What a browser can send as a cookie value (RFC 6265 cookie-octets).
COOKIE_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=';,"\\'),
                      max_size=300)
EVIL = ["https://evil.example/", "//evil.example", "/\\evil.example", "javascript:alert(1)", "http:evil.example"]


def clean(r) -> None:
    assert r.status_code < 500, (r.status_code, r.text[:300])
    assert "Traceback" not in r.text and 'File "' not in r.text


def signed_in_as_leader(r) -> bool:
    return r.status_code == 200 and "Signed in as" in r.text and 'id="attainment"' in r.text


# ----------------------------------------------------------------------------- session cookie


def test_tampered_session_cookies_are_strangers(web, fake_slack):
    sign_in(web, fake_slack, LEADER)
    good = web.cookies.get(SESSION_COOKIE)
    assert good and signed_in_as_leader(web.get("/dashboard"))
    forged = URLSafeTimedSerializer("not-the-secret", salt="triage-session").dumps(
        {"user": LEADER, "name": "Lee", "team": "T0001", "sid": "x"})

    @FUZZ
    @given(st.one_of(
        COOKIE_TEXT,
        st.builds(lambda i, c: good[:i] + c + good[i + 1:], st.integers(0, len(good) - 1),
                  st.sampled_from("ABCabc0129-_.")).filter(lambda v: v != good),
        st.integers(1, len(good) - 1).map(lambda i: good[:i]),
        st.just(forged),
        st.just(good.split(".")[0] + ".AAAA.BBBB"),
    ))
    def check(cookie):
        web.cookies.clear()
        web.cookies.set(SESSION_COOKIE, cookie)
        page = web.get("/dashboard")
        clean(page)
        assert not signed_in_as_leader(page)
        api = web.get("/api/sla/summary")
        clean(api)
        assert api.status_code == 401

    check()


# ----------------------------------------------------------------------------- OAuth state


def test_tampered_state_never_signs_anyone_in(web, fake_slack):
    fake_slack.openid_sign_in_as(LEADER)
    login = web.get("/auth/slack/login", follow_redirects=False)
    real_state = parse_qs(urlsplit(login.headers["location"]).query)["state"][0]
    real_cookie = web.cookies.get(STATE_COOKIE)

    @FUZZ
    @given(state=st.one_of(st.none(), st.text(max_size=80), st.just(real_state[:-1] + "x")),
           cookie=st.one_of(st.none(), COOKIE_TEXT, st.just(real_cookie),
                            st.just(real_cookie[:-2] + "zz")),
           code=st.one_of(st.none(), st.text(max_size=40)))
    def check(state, cookie, code):
        if state == real_state and cookie == real_cookie:
            return  # the genuine pair is the one case that may sign in
        web.cookies.clear()
        if cookie is not None:
            web.cookies.set(STATE_COOKIE, cookie)
        params = {k: v for k, v in (("state", state), ("code", code)) if v is not None}
        r = web.get("/auth/slack/callback", params=params, follow_redirects=False)
        clean(r)
        assert r.status_code in (400, 502)
        assert SESSION_COOKIE not in r.headers.get("set-cookie", "")

    check()


# ----------------------------------------------------------------------------- redirects


def test_no_route_redirects_off_site(web, fake_slack):
    """Whatever `next`, `redirect_uri`, `return_to` or `url` say, sign-in goes to Slack's page with our own
    callback, and back to our own /dashboard."""
    authorize = web.get("/auth/slack/login", follow_redirects=False).headers["location"].split("?")[0]

    @FUZZ
    @given(name=st.sampled_from(["next", "redirect_uri", "return_to", "url", "redirect", "continue"]),
           value=st.one_of(st.sampled_from(EVIL), st.text(max_size=60)))
    def check(name, value):
        login = web.get("/auth/slack/login", params={name: value}, follow_redirects=False)
        clean(login)
        where = login.headers["location"]
        assert where.split("?")[0] == authorize
        assert parse_qs(urlsplit(where).query)["redirect_uri"] == ["http://testserver/auth/slack/callback"]
        out = web.post("/auth/logout", params={name: value}, follow_redirects=False)
        clean(out)
        assert out.headers.get("location", "/dashboard") == "/dashboard"

    check()
    done = sign_in_with_extra(web, fake_slack, {"next": "https://evil.example/"})
    assert done.status_code == 303 and done.headers["location"] == "/dashboard"


def sign_in_with_extra(client, fake_slack, extra):
    import httpx

    fake_slack.openid_sign_in_as(LEADER)
    login = client.get("/auth/slack/login", follow_redirects=False)
    back = httpx.get(login.headers["location"], follow_redirects=False).headers["location"]
    path = back.removeprefix("http://testserver") + "&" + urlencode(extra)
    return client.get(path, follow_redirects=False)


# ----------------------------------------------------------------------------- CSRF on logout


def test_logout_needs_this_dashboards_token(web, fake_slack):
    sign_in(web, fake_slack, LEADER)
    page = web.get("/dashboard")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    @FUZZ
    @given(st.one_of(st.text(max_size=80), st.just(token[:-1]), st.just(token.upper())).filter(lambda t: t != token))
    def check(csrf):
        r = web.post("/auth/logout", data={"csrf": csrf}, follow_redirects=False)
        clean(r)
        assert r.status_code == 403
        assert signed_in_as_leader(web.get("/dashboard")), "a forged sign-out signed the leader out"

    check()
    assert web.post("/auth/logout", follow_redirects=False).status_code == 403  # a cross-site form has none
    out = web.post("/auth/logout", data={"csrf": token}, follow_redirects=False)
    assert out.status_code == 303
    web.cookies.clear()
    assert not signed_in_as_leader(web.get("/dashboard"))


# ----------------------------------------------------------------------------- what AEs type


def hostile_history(history):
    services, ids = history
    made = []
    for i, text in enumerate(HOSTILE):
        made.append(seeded.submit(services, seeded.at(8, 9, i), f"hostile-{i}", customer_name=f"Acme {text}"))
    sweep.record_breach_reason(services.engine, ids["R5"], LEADER, "other", HOSTILE[1] + " " + HOSTILE[4],
                               seeded.NOW, config=services.config)
    return made


def test_markup_typed_by_an_ae_is_text_in_the_dashboard(web, fake_slack, history):
    hostile_history(history)
    sign_in(web, fake_slack, LEADER)
    page = web.get("/dashboard", params={"since": "2026-11-01", "until": "2026-11-09"})
    assert page.status_code == 200
    html = page.text
    for text in HOSTILE:
        if "<" in text or '"' in text:
            assert text not in html, f"raw markup in the page: {text}"
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html  # shown, as text
    assert "<script" not in html.lower() and "onerror=" not in html.replace("onerror=&#34;", "")


def test_formulas_and_markup_in_the_csv_are_inert(web, history):
    hostile_history(history)
    r = web.get("/api/requests.csv", params={"since": "2026-11-01", "until": "2026-11-09"},
                headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert r.status_code == 200
    rows = list(csv.reader(io.StringIO(r.text)))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), f"a live formula: {cell!r}"
    customers = {row[rows[0].index("customer_name")] for row in rows[1:]}
    assert "Acme <script>window.__pwned=1</script>" in customers  # text kept as typed (CSV is not HTML)


def test_markup_typed_by_an_ae_runs_nothing_in_chromium(history, history_settings, fake_slack):
    from tests.leaders.browser import chromium, require_browser, serve
    from tests.leaders.conftest import CLIENT_ID, CLIENT_SECRET, web_settings
    from triage.web import create_app

    require_browser()
    hostile_history(history)
    fake_slack.openid_client(CLIENT_ID, CLIENT_SECRET)
    fake_slack.openid_sign_in_as(LEADER)
    app = create_app(web_settings(history_settings, fake_slack), migrate=False, worker=False)
    with serve(app) as base, chromium() as browser:
        page = browser.new_page()
        dialogs = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.goto(f"{base}/dashboard")
        page.get_by_role("link", name="Sign in with Slack").click()
        page.wait_for_url(f"{base}/dashboard")
        page.goto(f"{base}/dashboard?since=2026-11-01&until=2026-11-30")
        page.wait_for_load_state("load")
        assert page.evaluate("window.__pwned") is None
        assert dialogs == []
        assert page.locator("iframe, script, img[src=x]").count() == 0
        assert "Acme <script>window.__pwned=1</script>" in page.inner_text("body")

