"""Issue 5, "own the miss": a late claim or a late done asks why; the leaders' breach post has a button."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.conftest import LEADER, LEADERS_CHANNEL, SA1, load_payload, post_slack_payload, wait_for
from tests.flows.test_work import PROJECT, click, filed
from triage.db import make_engine
from triage.models import Request
from triage.services import Services
from triage.worker import run_once


def make_late(settings, request_id: int) -> None:
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(sa.update(Request).where(Request.id == request_id)
                     .values(deadline=datetime.now(UTC) - timedelta(hours=1)))


def submit_breach_reason(client, fake_slack, user, reason, note=""):
    opened = list(fake_slack.views.values())[-1]
    assert opened["callback_id"] == "sa_breach_reason_modal"
    p = load_payload("view_submission_bolt_minimal.json")
    p["user"] = {"id": user, "username": "u", "name": "u", "team_id": "T111"}
    state = {"breach_reason": {"breach_reason": {"type": "static_select", "selected_option": None if not reason else
                                                 {"text": {"type": "plain_text", "text": reason}, "value": reason}}},
             "breach_note": {"breach_note": {"type": "plain_text_input", "value": note or None}}}
    p["view"] = {**opened, "state": {"values": state}}
    return post_slack_payload(client, p)


def test_late_claim_asks_for_the_reason_and_it_lands_on_the_issue(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    make_late(settings, 1)
    click(client, fake_slack, card, "claim", SA1)
    wait_for(lambda: any(v["callback_id"] == "sa_breach_reason_modal" for v in fake_slack.views.values()),
             what="breach reason modal")
    assert submit_breach_reason(client, fake_slack, SA1, None).json()["response_action"] == "errors"
    assert submit_breach_reason(client, fake_slack, SA1, "other").json()["errors"].get("breach_note")
    r = submit_breach_reason(client, fake_slack, SA1, "capacity", "Two SAs out sick this week.")
    assert r.status_code == 200 and b"errors" not in r.content
    services = Services(settings, make_engine(settings.database_url))
    assert services.get(1).breach_reason == "capacity"
    run_once(settings, datetime.now(UTC))
    notes = fake_gitlab.notes(PROJECT, 1)
    assert any("SLA missed" in n["body"] and "out sick" in n["body"] for n in notes)


def test_on_time_claim_asks_nothing(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    click(client, fake_slack, card, "claim", SA1)
    wait_for(lambda: Services(settings, make_engine(settings.database_url)).get(1).owner == SA1, what="claim")
    assert not any(v["callback_id"] == "sa_breach_reason_modal" for v in fake_slack.views.values())


def test_leaders_breach_post_has_a_record_button(client, fake_slack, fake_gitlab, settings):
    filed(client, fake_slack, settings)
    run_once(settings, datetime.now(UTC) + timedelta(hours=25))
    post = fake_slack.messages_in(LEADERS_CHANNEL, top_level_only=True)[-1]
    button = next(e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"])
    assert button["action_id"] == "record_breach_reason" and button["value"] == "1"

    p = load_payload("block_actions_message_button.json")
    p["user"] = {"id": LEADER}
    p["channel"] = {"id": LEADERS_CHANNEL}
    p["container"] = {"type": "message", "message_ts": post["ts"], "channel_id": LEADERS_CHANNEL}
    p["trigger_id"] = fake_slack.new_trigger_id()
    p["actions"] = [{**button, "block_id": "b", "action_ts": "1.3"}]
    assert post_slack_payload(client, p).status_code == 200
    wait_for(lambda: any(v["callback_id"] == "sa_breach_reason_modal" for v in fake_slack.views.values()),
             what="breach reason modal")
    make_late(settings, 1)  # the submission is judged by the real clock; the sweep above ran 25h ahead
    assert submit_breach_reason(client, fake_slack, LEADER, "late_triage").status_code == 200
    assert Services(settings, make_engine(settings.database_url)).get(1).breach_reason == "late_triage"
