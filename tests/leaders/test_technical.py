"""Issue 11, "Counted": the technical win rate on every leaders' summary, honest (withdrawals counted) beside the
rate that leaves withdrawals out, with the counts behind both and the time from request to outcome.
History: tests/leaders/seed.py (OUTCOMES), on top of the seeded week."""

from __future__ import annotations

import csv
import io
import json

from tests.conftest import LEADER, SA1, SA2, wait_for
from tests.leaders.conftest import API_TOKEN, post_event, sign_in, slash
from triage.services.outcomes import OUTCOME_CSV_COLUMNS

WEEK = {"since": "2026-11-02", "until": "2026-11-08"}
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}
AMER = "Technical win rate 50% (2 of 4, counting 1 withdrawal) · 67% leaving withdrawals out"
SA1_LINE = "Technical win rate 33% (1 of 3, counting 1 withdrawal) · 50% leaving withdrawals out"


def test_the_summary_json_carries_both_win_rates_per_queue_and_sa(outcomes, web):
    body = web.get("/api/sla/summary", params=WEEK, headers=BEARER).json()
    t = body["totals"]["technical"]
    # The week (W1..W7; W0 was received before it): 3 wins, 1 loss, 1 withdrew, 1 not applicable, 1 without one.
    assert (t["technical_wins"], t["technical_losses"], t["withdrew"], t["not_applicable"]) == (3, 1, 1, 1)
    assert t["win_rate"] == 0.6 and t["win_rate_excluding_withdrawals"] == 0.75  # 3/5 and 3/4
    assert t["done"] == 7 and t["outcome_missing"] == 1
    # Days to outcome 2, 3, 1, 4, 2, 1 (nearest rank): median 2, p90 4.
    assert t["time_to_outcome_days"] == {"p50": 2.0, "p90": 4.0}
    assert body["totals"]["received"] == 15 and "attainment" in body["totals"]  # the SLA keys stay
    queues = {q["queue"]: q["technical"] for q in body["queues"]}
    assert (queues["amer-east"]["win_rate"], queues["amer-east"]["win_rate_excluding_withdrawals"]) == (0.5, 0.6667)
    assert queues["amer-east"]["time_to_outcome_days"] == {"p50": 2.0, "p90": 4.0}
    emea = queues["emea"]
    assert (emea["technical_wins"], emea["not_applicable"], emea["win_rate"]) == (1, 1, 1.0)
    sas = {s["slack_user"]: s["technical"] for s in body["sas"]}
    assert (sas[SA1]["technical_wins"], sas[SA1]["technical_losses"], sas[SA1]["withdrew"]) == (1, 1, 1)
    assert (sas[SA1]["win_rate"], sas[SA1]["win_rate_excluding_withdrawals"]) == (0.3333, 0.5)
    assert (sas[SA2]["technical_wins"], sas[SA2]["outcome_missing"]) == (2, 1)
    assert all("technical" in x for x in body["types"])
    # One queue: the same figures, filtered.
    one = web.get("/api/sla/summary", params={**WEEK, "queue": "amer-east"}, headers=BEARER).json()
    assert one["totals"]["technical"] == {**queues["amer-east"]}


def test_the_period_rule_counts_an_outcome_in_the_period_its_request_was_received(outcomes, web):
    # W0 was received on Nov 1 and won on Nov 3: it counts in a period holding Nov 1, not in the week.
    before = web.get("/api/sla/summary", params={"since": "2026-11-01", "until": "2026-11-01"},
                     headers=BEARER).json()
    assert before["totals"]["technical"]["technical_wins"] == 1
    assert {s["slack_user"]: s["technical"]["technical_wins"] for s in before["sas"]}[SA2] == 1


def test_the_csv_has_the_outcome_columns(outcomes, web):
    r = web.get("/api/requests.csv", params=WEEK, headers=BEARER)
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert set(OUTCOME_CSV_COLUMNS) <= set(rows[0])
    by_customer = {row["customer_name"]: row for row in rows}
    loss = by_customer["Customer W2"]
    assert (loss["technical_outcome"], loss["outcome_by"], loss["days_to_outcome"]) == ("technical_loss", SA1, "3.0")
    assert loss["outcome_at"].startswith("2026-11-06T09:00")
    assert by_customer["Customer W7"]["technical_outcome"] == "" and by_customer["Customer W7"]["status"] == "done"
    assert "Customer W0" not in by_customer


def test_sa_sla_shows_the_two_rates_in_a_leaders_words(outcomes, slack_app):
    text = json.dumps(slash(slack_app, LEADER, "amer-east 7d").json()["blocks"], ensure_ascii=False)
    assert "*Technical wins* (requests received in the period)" in text
    assert f"*All queues*: {AMER}" in text and f"*AMER East*: {AMER}" in text
    assert f"<@{SA1}>: {SA1_LINE}" in text
    assert "median 2.0 days from request to outcome (p90 4.0 days)" in text


def test_app_home_for_a_leader_shows_the_win_rates(outcomes, slack_app, fake_slack):
    assert post_event(slack_app, {"type": "app_home_opened", "user": LEADER, "channel": "D0LEAD", "tab": "home",
                                  "event_ts": "1762689600.000100"}).status_code == 200
    wait_for(lambda: fake_slack.calls_to("views.publish"), what="views.publish")
    text = json.dumps(fake_slack.home_view(LEADER)["blocks"], ensure_ascii=False)
    # Last 30 days hold W0 too: EMEA has 2 wins, 1 not applicable, 1 done without an outcome.
    assert f"*AMER East*: {AMER}" in text
    assert ("*EMEA*: Technical win rate 100% (2 of 2, counting 0 withdrawals) · 100% leaving withdrawals out · "
            "1 not applicable · 1 done without an outcome") in text
    assert f"<@{SA1}>: {SA1_LINE}" in text


def test_the_dashboard_shows_both_rates_and_the_counts(outcomes, web, fake_slack):
    sign_in(web, fake_slack, LEADER)
    page = web.get("/dashboard", params=WEEK).text
    assert 'id="win-rate">60%<' in page and 'id="win-rate-excl">75%<' in page
    assert "technical win rate (3 of 5, counting 1 withdrawn)" in page
    assert ("Technical win rate 60% (3 of 5, counting 1 withdrawal) · 75% leaving withdrawals out · "
            "1 not applicable · 1 done without an outcome") in page
    table = page.split('id="technical-queues"')[1].split("</table>")[0]
    assert "<td>AMER East</td>" in table and '<td class="n">50%</td><td class="n">67%</td>' in table
    sas = page.split('id="technical-sas"')[1].split("</table>")[0]
    assert f"<td>{SA1}</td>" in sas and '<td class="n">33%</td><td class="n">50%</td>' in sas


def test_no_outcome_yet_means_no_win_rate_line(history, slack_app):
    # The seeded week alone has nothing done: the summary shows no technical line rather than "0%".
    text = json.dumps(slash(slack_app, LEADER, "7d").json()["blocks"], ensure_ascii=False)
    assert "Technical win rate" not in text
