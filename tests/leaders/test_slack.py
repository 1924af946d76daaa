"""Issue 10: /sa-sla and the App Home, through signed requests and the fake Slack server."""

from __future__ import annotations

import json

from tests.conftest import AE, LEADER, SA1, wait_for
from tests.leaders.conftest import post_event, slash


def _text(blocks) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_a_leader_gets_the_summary_in_block_kit(slack_app, history):
    _, ids = history
    r = slash(slack_app, LEADER, "emea 7d")
    assert r.status_code == 200
    body = r.json()
    assert body["response_type"] == "ephemeral"
    text = _text(body["blocks"])
    assert "SLA summary: EMEA, 7d" in text
    # EMEA in Nov 3..9: R4 (declined), R5 (late, waiting), R11 (waiting on the AE): nothing allocated.
    assert "3 received" in text and "1 declined" in text and "2 waiting, 1 late" in text
    assert f"SAR-{ids['R5']}" in text and "Stark Industries" in text and "late" in text
    assert "No SA had capacity: 1" in text


def test_all_queues_by_default_with_the_most_loaded_sas(slack_app):
    body = slash(slack_app, LEADER).json()
    text = _text(body["blocks"])
    assert "all queues, 30d" in text and "*AMER East*" in text and "*EMEA*" in text
    assert f"<@{SA1}>: 3 open" in text
    assert body["blocks"][0]["type"] == "header"


def test_others_get_a_one_line_refusal_and_no_figures(slack_app):
    body = slash(slack_app, SA1, "7d").json()
    assert body["text"] == "SLA summaries are for the SA leaders named in the app's config."
    assert "blocks" not in body and not any(ch.isdigit() for ch in body["text"])


def test_argument_errors_say_the_accepted_forms(slack_app):
    body = slash(slack_app, LEADER, "yesterday").json()
    assert "`yesterday`" in body["text"] and "[7d|30d|quarter]" in body["text"] and "`amer-east`" in body["text"]
    assert "blocks" not in body


def test_app_home_for_a_leader_shows_the_summary_and_what_is_late(slack_app, fake_slack, history):
    _, ids = history
    assert post_event(slack_app, {"type": "app_home_opened", "user": LEADER, "channel": "D0LEAD", "tab": "home",
                                  "event_ts": "1762689600.000100"}).status_code == 200
    call = wait_for(lambda: fake_slack.calls_to("views.publish"), what="views.publish")
    assert len(call) == 1 and call[0].args["user_id"] == LEADER
    view = fake_slack.home_view(LEADER)
    text = _text(view["blocks"])
    assert "SLA summary (last 30 days)" in text and "Late and at risk now" in text
    assert f"SAR-{ids['R5']}" in text and "Stark Industries" in text


def test_app_home_for_an_sa_shows_claims_and_the_queue(slack_app, fake_slack, history):
    _, ids = history
    post_event(slack_app, {"type": "app_home_opened", "user": SA1, "channel": "D0SA1", "tab": "home",
                           "event_ts": "1762689600.000200"})
    wait_for(lambda: fake_slack.home_view(SA1), what="SA1's home")
    text = _text(fake_slack.home_view(SA1)["blocks"])
    assert "SLA summary" not in text  # not a leader
    claims, unclaimed = text.split("Unclaimed in your queues")
    for ref in ("R1", "R6", "R10"):
        assert f"SAR-{ids[ref]}*" in claims
    # SA1 is in AMER East's user group: its unclaimed requests, most urgent first, with the time left.
    assert f"SAR-{ids['R7']}*" in unclaimed and f"SAR-{ids['R8']}*" in unclaimed and "due in" in unclaimed
    assert f"SAR-{ids['R5']}*" not in unclaimed  # EMEA is not SA1's queue


def test_app_home_for_an_ae_shows_their_requests(slack_app, fake_slack, history):
    _, ids = history
    post_event(slack_app, {"type": "app_home_opened", "user": AE, "channel": "D0AE", "tab": "home",
                           "event_ts": "1762689600.000300"})
    wait_for(lambda: fake_slack.home_view(AE), what="the AE's home")
    text = _text(fake_slack.home_view(AE)["blocks"])
    assert "Requests you filed" in text and "Your open claims" not in text and "SLA summary" not in text
    assert f"SAR-{ids['R4']}*" in text and "declined" in text
    assert f"SAR-{ids['R3']}*" not in text  # AE2 filed that one
