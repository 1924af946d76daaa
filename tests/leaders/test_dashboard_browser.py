"""Issue 10, end to end: a leader signs in with Slack in headless Chromium and reads the dashboard."""

from __future__ import annotations

from tests.conftest import LEADER, SA1
from tests.leaders.browser import chromium, require_browser, serve
from tests.leaders.conftest import CLIENT_ID, CLIENT_SECRET, web_settings
from triage.web import create_app


def test_a_leader_reads_the_dashboard_in_chromium(history, history_settings, fake_slack):
    require_browser()
    _, ids = history
    fake_slack.openid_client(CLIENT_ID, CLIENT_SECRET)
    fake_slack.openid_sign_in_as(LEADER)
    app = create_app(web_settings(history_settings, fake_slack), migrate=False, worker=False)
    with serve(app) as base, chromium() as browser:
        page = browser.new_page()
        page.goto(f"{base}/dashboard")
        page.get_by_role("link", name="Sign in with Slack").click()  # via the fake Slack's authorize page
        page.wait_for_url(f"{base}/dashboard")
        assert "Signed in as Lee Leader" in page.inner_text("header")

        page.goto(f"{base}/dashboard?since=2026-11-02&until=2026-11-08")
        assert page.inner_text("#attainment") == "50%"
        totals = page.inner_text("#totals")
        assert "8\nreceived" in totals and "2 of 4" in totals
        assert "Requests received 2026-11-02 to 2026-11-08" in page.inner_text("#period")
        queues = page.inner_text("#queues")
        assert "AMER East" in queues and "EMEA" in queues
        # What is late: R5 is waiting past its deadline, with links to its card and issue.
        waiting = page.locator("#waiting tr", has_text="Stark Industries")
        assert "LATE" in waiting.inner_text()
        assert page.locator("#sas").inner_text().count(SA1) == 1
        assert page.locator("svg").count() == 4
        assert "Why SLAs were missed" in page.locator("svg").nth(3).text_content()

        # Filter to one queue with the form, as a leader would.
        page.select_option("select[name=queue]", "emea")
        page.click("form.filters button")
        page.wait_for_url("**queue=emea**")
        assert "AMER East" not in page.inner_text("#queues")
        page.click("text=Sign out")
        page.wait_for_url(f"{base}/dashboard")
        assert page.get_by_role("link", name="Sign in with Slack").count() == 1
        assert f"SAR-{ids['R5']}" not in page.content()
