"""Issue 3 end to end: shortcut -> modal -> validated submission -> GitLab issue -> card -> DM."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import (
    AE,
    AMER_CHANNEL,
    load_payload,
    post_slack_payload,
    shortcut_payload,
    submission_payload,
    wait_for,
)
from triage.worker import run_once

GOOD = {
    "request_type": "opportunity",
    "queue": "amer-east",
    "customer_name": "Acme Corp",
    "opportunity": "0065g00000AbCdEAAV",
    "command_plan_url": "https://docs.example.com/command-plan/acme",
    "why_now": "Their renewal is in three weeks and the CTO wants a decision before then.",
    "pain": "Releases take two weeks because every pipeline is hand-built and nobody trusts the tests.",
    "champion": "Jordan Lee, VP Engineering",
    "asks": ["demo", "pov"],
    "hosting": "saas",
}


def open_modal(client, fake_slack, **kw) -> dict:
    before = len(fake_slack.calls_to("views.open"))
    r = post_slack_payload(client, shortcut_payload(fake_slack, **kw))
    assert r.status_code == 200
    call = wait_for(lambda: fake_slack.calls_to("views.open")[before:], what="views.open")[0]
    view = call.args["view"]
    return view if isinstance(view, dict) else __import__("json").loads(view)


def submit(client, view, values, **kw):
    return post_slack_payload(client, submission_payload(view, values, **kw))


def test_shortcut_opens_full_opportunity_form(client, fake_slack):
    view = open_modal(client, fake_slack)
    assert view["callback_id"] == "sa_request_modal"
    ids = [b["block_id"] for b in view["blocks"] if b["type"] == "input"]
    for field in ("request_type", "queue", "customer_name", "opportunity", "command_plan_url", "why_now",
                  "pain", "champion", "asks", "hosting", "preferred_date_1", "expedite"):
        assert field in ids
    rt = next(b for b in view["blocks"] if b.get("block_id") == "request_type")
    assert rt["element"]["initial_option"]["value"] == "opportunity"
    assert rt["dispatch_action"] is True
    queue = next(b for b in view["blocks"] if b.get("block_id") == "queue")
    assert [o["value"] for o in queue["element"]["options"]] == ["amer-east", "emea"]


def test_submission_lands_as_issue_card_and_dm(client, fake_slack, fake_gitlab, settings):
    view = open_modal(client, fake_slack)
    r = submit(client, view, GOOD)
    assert r.status_code == 200
    assert r.json()["response_action"] == "update"  # the "saved" confirmation, no error
    # Nothing external happened inside the acknowledgement.
    assert fake_gitlab.calls_matching("POST", r"/issues$") == []
    assert fake_slack.calls_to("chat.postMessage") == []

    run_once(settings, datetime.now(UTC))

    issues = fake_gitlab.issues("sa-triage-boards/amer-east")
    assert len(issues) == 1
    issue = issues[0]
    assert len(fake_gitlab.calls_matching("POST", r"/projects/[^/]+/issues$")) == 1
    assert "Acme Corp" in issue["title"]
    assert set(issue["labels"]) >= {"SA Activity", "SA POV"}
    assert "Expedite" not in issue["labels"]
    assert issue["due_date"]
    assert GOOD["pain"] in issue["description"]
    assert "<!-- triage-request: 1 -->" in issue["description"]

    cards = fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)
    assert len(cards) == 1
    card_text = str(cards[0]["blocks"])
    assert "Acme Corp" in card_text and issue["web_url"] in card_text
    action_ids = {e["action_id"] for b in cards[0]["blocks"] if b["type"] == "actions" for e in b["elements"]}
    assert {"claim", "needs_info", "decline"} <= action_ids
    dms = [m for m in fake_slack.messages if m["channel"] in (AE, fake_slack.dm_channel(AE))]
    assert len(dms) == 1 and issue["web_url"] in str(dms[0])

    run_once(settings, datetime.now(UTC))  # a second pass does nothing again
    assert len(fake_gitlab.issues("sa-triage-boards/amer-east")) == 1
    assert len(fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)) == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"opportunity": "0065g00000AbCdEAAX"}, "opportunity"),  # bad checksum
        ({"opportunity": "0015g00000AbCdEAAV"}, "opportunity"),  # an Account, not an Opportunity
        ({"command_plan_url": "not a url"}, "command_plan_url"),
        ({"why_now": "TBD"}, "why_now"),
        ({"pain": "see command plan"}, "pain"),
        ({"customer_name": "   "}, "customer_name"),
        ({"asks": []}, "asks"),
        ({"pain": "word " * 700}, "pain"),  # over Slack's 3,000 characters: refused, not cut
    ],
)
def test_invalid_input_gets_inline_error_and_nothing_is_stored(client, fake_slack, fake_gitlab, settings,
                                                                change, field):
    view = open_modal(client, fake_slack)
    r = submit(client, view, {**GOOD, **change})
    body = r.json()
    assert body["response_action"] == "errors"
    assert field in body["errors"]
    run_once(settings, datetime.now(UTC))
    assert fake_gitlab.issues("sa-triage-boards/amer-east") == []


def test_past_preferred_date_and_expedite_without_reason(client, fake_slack):
    view = open_modal(client, fake_slack)
    past = int((datetime.now(UTC) - timedelta(days=1)).timestamp())
    r = submit(client, view, {**GOOD, "preferred_date_1": past, "expedite": ["expedite"]})
    errors = r.json()["errors"]
    assert "preferred_date_1" in errors and "expedite_reason" in errors


def test_same_view_twice_and_slack_retry_create_one_request(client, fake_slack, fake_gitlab, settings):
    view = open_modal(client, fake_slack)
    payload = submission_payload(view, GOOD, view_id="VSAME00001")
    first = post_slack_payload(client, payload)
    retry = post_slack_payload(client, payload, headers={"X-Slack-Retry-Num": "1",
                                                         "X-Slack-Retry-Reason": "http_timeout"})
    assert first.status_code == retry.status_code == 200
    # The retry is the same submission, so the AE sees the same confirmation, not an "already open" notice
    # about their own request.
    assert "SAR-1* is saved" in str(first.json()["view"]) and "SAR-1* is saved" in str(retry.json()["view"])
    run_once(settings, datetime.now(UTC))
    assert len(fake_gitlab.issues("sa-triage-boards/amer-east")) == 1


def test_duplicate_opportunity_is_shown_then_may_be_filed(client, fake_slack, fake_gitlab, settings):
    view = open_modal(client, fake_slack)
    submit(client, view, GOOD)
    run_once(settings, datetime.now(UTC))
    issue_url = fake_gitlab.issues("sa-triage-boards/amer-east")[0]["web_url"]

    view2 = open_modal(client, fake_slack)
    r = submit(client, view2, GOOD, view_id="VSECOND001")
    body = r.json()
    assert body["response_action"] == "update"
    notice = body["view"]["blocks"][0]["elements"][0]["text"]
    # A working link to the open request's issue, not its escaped source.
    assert notice.startswith(f":warning: <{issue_url}|SAR-1> is already open") and "&lt;" not in notice
    # The AE submits the updated view anyway: it is filed.
    r = submit(client, body["view"], GOOD, view_id="VSECOND001")
    assert "SAR-2" in str(r.json()["view"])
    run_once(settings, datetime.now(UTC))
    assert len(fake_gitlab.issues("sa-triage-boards/amer-east")) == 2


def test_queue_defaults_to_last_used(client, fake_slack, settings):
    view = open_modal(client, fake_slack)
    submit(client, view, {**GOOD, "queue": "emea"})
    view = open_modal(client, fake_slack)
    queue = next(b for b in view["blocks"] if b.get("block_id") == "queue")
    assert queue["element"]["initial_option"]["value"] == "emea"


def test_choosing_event_type_updates_modal(client, fake_slack):
    open_modal(client, fake_slack)
    opened = list(fake_slack.views.values())[-1]  # as Slack holds it, with its id and hash
    payload = load_payload("block_actions_message_button.json")
    for k in ("message", "channel", "container", "response_url"):
        payload.pop(k, None)
    payload["container"] = {"type": "view", "view_id": opened["id"]}
    state = submission_payload(opened, {**GOOD, "request_type": "event"})["view"]["state"]
    payload["view"] = {**opened, "state": state}
    payload["user"] = {"id": AE}
    payload["actions"] = [{"action_id": "request_type", "block_id": "request_type", "type": "static_select",
                           "selected_option": {"text": {"type": "plain_text", "text": "Event"}, "value": "event"},
                           "action_ts": "1.2"}]
    assert post_slack_payload(client, payload).status_code == 200
    call = wait_for(lambda: fake_slack.calls_to("views.update"), what="views.update")[0]
    new = call.args["view"]
    ids = [b["block_id"] for b in new["blocks"] if b["type"] == "input"]
    assert "event_name" in ids and "event_date" in ids and "why_now" not in ids
    cust = next(b for b in new["blocks"] if b.get("block_id") == "customer_name")
    assert cust["element"].get("initial_value") == "Acme Corp"  # what was typed survives


def test_a_type_change_that_lost_to_a_newer_one_is_a_log_line_not_a_traceback(client, fake_slack, caplog):
    """The AE switched the type twice quickly: Slack refuses the older views.update (hash_conflict), as the
    app asks it to. That is expected, so it is one line in the log, not an error with a traceback."""
    open_modal(client, fake_slack)
    opened = list(fake_slack.views.values())[-1]
    payload = load_payload("block_actions_message_button.json")
    for k in ("message", "channel", "container", "response_url"):
        payload.pop(k, None)
    payload["container"] = {"type": "view", "view_id": opened["id"]}
    payload["view"] = {**opened, "hash": "stale.hash",
                       "state": submission_payload(opened, {**GOOD, "request_type": "event"})["view"]["state"]}
    payload["user"] = {"id": AE}
    payload["actions"] = [{"action_id": "request_type", "block_id": "request_type", "type": "static_select",
                           "selected_option": {"text": {"type": "plain_text", "text": "Event"}, "value": "event"},
                           "action_ts": "1.2"}]
    with caplog.at_level(logging.INFO):
        assert post_slack_payload(client, payload).status_code == 200
        line = wait_for(lambda: [r for r in caplog.records if "views.update refused" in r.getMessage()],
                        what="the refusal's log line")[0]
    assert line.getMessage() == "new request type: views.update refused: hash_conflict"
    assert line.levelno == logging.INFO
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert fake_slack.views[opened["id"]]["title"] == opened["title"]  # the newer view stays as it was


def test_message_shortcut_prefills(client, fake_slack):
    p = load_payload("message_shortcut.json")
    p["trigger_id"] = fake_slack.new_trigger_id()
    p["callback_id"] = "sa_request_from_message"
    p["user"] = {"id": AE, "username": "alex", "team_id": "T111"}
    p["message"]["text"] = ("Acme's platform team keeps missing release dates because their pipelines are "
                            "hand-built: https://acme.lightning.force.com/lightning/r/Opportunity/"
                            "0065g00000AbCdEAAV/view")
    assert post_slack_payload(client, p).status_code == 200
    view = wait_for(lambda: fake_slack.calls_to("views.open"), what="views.open")[0].args["view"]
    opp = next(b for b in view["blocks"] if b.get("block_id") == "opportunity")
    assert opp["element"]["initial_value"] == "0065g00000AbCdEAAV"
    pain = next(b for b in view["blocks"] if b.get("block_id") == "pain")
    assert "hand-built" in pain["element"]["initial_value"]
