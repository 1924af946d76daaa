"""Issue 4: SAs work requests from the thread; the GitLab board stays in sync both ways."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from tests.conftest import (
    AE,
    AMER_CHANNEL,
    EMEA_CHANNEL,
    LEADER,
    OUTSIDER,
    SA1,
    SA2,
    SA3,
    WEBHOOK_SECRET,
    load_payload,
    make_settings,
    post_slack_payload,
    submission_payload,
    wait_for,
)
from tests.flows.test_intake import GOOD, open_modal, submit
from triage.core.errors import AlreadyClaimed
from triage.db import make_engine
from triage.migrate import upgrade
from triage.services import Services
from triage.worker import run_once

PROJECT = "sa-triage-boards/amer-east"


def filed(client, fake_slack, settings, values=None, channel=AMER_CHANNEL) -> dict:
    """Submit a request and let the worker land it; returns the card message."""
    view = open_modal(client, fake_slack)
    submit(client, view, values or GOOD)
    run_once(settings, datetime.now(UTC))
    return fake_slack.messages_in(channel, top_level_only=True)[-1]


def click(client, fake_slack, card: dict, action_id: str, user: str, **action) -> None:
    p = load_payload("block_actions_message_button.json")
    p["user"] = {"id": user}
    p["channel"] = {"id": AMER_CHANNEL}
    p["container"] = {"type": "message", "message_ts": card["ts"], "channel_id": AMER_CHANNEL}
    p["message"] = {**p["message"], "ts": card["ts"], "blocks": card["blocks"]}
    p["trigger_id"] = fake_slack.new_trigger_id()
    element = next(e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["action_id"] == action_id)
    block = next(b for b in card["blocks"] if b["type"] == "actions" and element in b["elements"])
    p["actions"] = [{"action_id": action_id, "block_id": block.get("block_id", "x"), "type": element["type"],
                     "action_ts": "1.1", **({"value": element["value"]} if "value" in element else {}), **action}]
    assert post_slack_payload(client, p).status_code == 200


def owned_by(settings, user, request_id=1):
    services = Services(settings, make_engine(settings.database_url))
    wait_for(lambda: services.get(request_id).owner == user, what=f"{user} to hold request {request_id}")


def ephemerals_for(fake_slack, user):
    return [e for e in fake_slack.ephemerals if e.get("user") == user]


def thread(fake_slack, card):
    return fake_slack.messages_in(AMER_CHANNEL, thread_ts=card["ts"])


def test_sa_claims_issue_assigned_in_one_put_card_thread_and_dm(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    fake_gitlab.reset_calls()
    click(client, fake_slack, card, "claim", SA1)
    owned_by(settings, SA1)  # the listener stores the claim after Slack's ack
    run_once(settings, datetime.now(UTC))

    puts = fake_gitlab.calls_matching("PUT", r"/issues/\d+$")
    assert len(puts) == 1
    issue = fake_gitlab.issues(PROJECT)[0]
    assert "SA Triaged" in issue["labels"]
    assert [a["username"] for a in issue["assignees"]] == ["sam"]
    updated = fake_slack.message(AMER_CHANNEL, card["ts"])
    assert SA1 in json.dumps(updated["blocks"]) and '"claim"' not in json.dumps(updated["blocks"])
    assert any(SA1 in m["text"] for m in thread(fake_slack, card))
    assert any("has your request" in m.get("text", "") for m in fake_slack.messages_in(AE))


def test_outsider_cannot_claim_and_second_sa_is_told_who_has_it(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    click(client, fake_slack, card, "claim", OUTSIDER)
    wait_for(lambda: ephemerals_for(fake_slack, OUTSIDER), what="refusal")
    click(client, fake_slack, card, "claim", SA1)
    wait_for(lambda: Services(settings, make_engine(settings.database_url)).get(1).owner == SA1, what="claim")
    click(client, fake_slack, card, "claim", SA2)
    note = wait_for(lambda: ephemerals_for(fake_slack, SA2), what="already claimed")[0]
    assert SA1 in note["text"]


def test_status_moves_labels_and_done_closes(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    click(client, fake_slack, card, "claim", SA1)
    owned_by(settings, SA1)  # the listener stores the claim after Slack's ack
    run_once(settings, datetime.now(UTC))
    card = fake_slack.message(AMER_CHANNEL, card["ts"])
    option = {"text": {"type": "plain_text", "text": "Doing"}, "value": "1:doing"}
    click(client, fake_slack, card, "status", SA1, selected_option=option)
    wait_for(lambda: Services(settings, make_engine(settings.database_url)).get(1).status == "doing", what="doing")
    run_once(settings, datetime.now(UTC))
    issue = fake_gitlab.issues(PROJECT)[0]
    assert "SA Doing" in issue["labels"] and "SA Triaged" not in issue["labels"]

    click(client, fake_slack, card, "status", SA2, selected_option={**option, "value": "1:done"})
    wait_for(lambda: ephemerals_for(fake_slack, SA2), what="not yours")
    click(client, fake_slack, card, "status", SA1, selected_option={**option, "value": "1:done"})
    wait_for(lambda: Services(settings, make_engine(settings.database_url)).get(1).status == "done", what="done")
    run_once(settings, datetime.now(UTC))
    assert fake_gitlab.issues(PROJECT)[0]["state"] == "closed"


def test_needs_info_round_trip(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    services = Services(settings, make_engine(settings.database_url))
    services.claim(1, SA1)
    services.needs_info(1, SA1, "Which cloud are they on today?\n/close")
    run_once(settings, datetime.now(UTC))
    issue = fake_gitlab.issues(PROJECT)[0]
    assert "SA Waiting" in issue["labels"] and issue["state"] == "opened"
    assert any("Which cloud" in n["body"] for n in fake_gitlab.notes(PROJECT, issue["iid"]))
    dm = [m for m in fake_slack.messages_in(AE) if "Which cloud" in json.dumps(m)]
    assert dm and "answer_needs_info" in json.dumps(dm[0]["blocks"])

    services.answer(1, AE, "AWS, moving to GCP next year.")
    run_once(settings, datetime.now(UTC))
    issue = fake_gitlab.issues(PROJECT)[0]
    assert "SA Waiting" not in issue["labels"] and "SA Triaged" in issue["labels"]
    assert any("AWS, moving" in m["text"] for m in thread(fake_slack, card))
    assert services.get(1).status == "claimed"


def test_decline_closes_with_note_and_tells_ae(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    Services(settings, make_engine(settings.database_url)).decline(1, SA1, "No Command Plan yet.")
    run_once(settings, datetime.now(UTC))
    issue = fake_gitlab.issues(PROJECT)[0]
    assert issue["state"] == "closed"
    assert any("No Command Plan" in n["body"] for n in fake_gitlab.notes(PROJECT, issue["iid"]))
    assert any("declined" in m["text"] for m in thread(fake_slack, card))
    assert any("No Command Plan" in m.get("text", "") for m in fake_slack.messages_in(AE))


def test_events_are_assigned_by_leaders(client, fake_slack, fake_gitlab, settings):
    values = {"request_type": "event", "queue": "amer-east", "customer_name": "Acme Corp",
              "event_name": "Acme DevOps Day", "event_location": "Boston", "event_competency": "CI/CD",
              "event_date": (datetime.now(UTC).date().replace(year=datetime.now(UTC).year + 1)).isoformat()}
    view = open_modal(client, fake_slack)
    p = submission_payload(view, values)
    # the event form has different blocks; submit against the event view
    from blocks.request_modal import request_modal

    event_view = request_modal(request_type="event", queues=[("amer-east", "AMER East"), ("emea", "EMEA")])
    p = submission_payload({**event_view, "id": "VEVENT0001"}, values)
    r = post_slack_payload(client, p)
    assert r.json().get("response_action") == "update", r.json()
    run_once(settings, datetime.now(UTC))
    card = fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)[-1]
    assert '"assign"' in json.dumps(card["blocks"]) and '"claim"' not in json.dumps(card["blocks"])
    click(client, fake_slack, card, "assign", SA1, selected_user=SA2)
    wait_for(lambda: ephemerals_for(fake_slack, SA1), what="only leaders")
    click(client, fake_slack, card, "assign", LEADER, selected_user=SA2)
    wait_for(lambda: Services(settings, make_engine(settings.database_url)).get(1).owner == SA2, what="assigned")
    run_once(settings, datetime.now(UTC))
    issue = fake_gitlab.issues(PROJECT)[0]
    assert [a["username"] for a in issue["assignees"]] == ["sasha"]


def test_sa_without_gitlab_match_is_asked_once_and_claim_stands(client, fake_slack, fake_gitlab, settings):
    filed(client, fake_slack, settings, {**GOOD, "queue": "emea"}, channel=EMEA_CHANNEL)
    services = Services(settings, make_engine(settings.database_url))
    services.claim(1, SA3)  # Sid has no email in Slack
    run_once(settings, datetime.now(UTC))
    asks = ephemerals_for(fake_slack, SA3)
    assert len(asks) == 1 and "GitLab username" in json.dumps(asks[0])
    assert services.get(1).owner == SA3
    assert fake_gitlab.issues("sa-triage-boards/emea")[0]["assignees"] == []
    # Sid can't be confirmed by e-mail (none in Slack, none public on GitLab): a leader links him.
    services.link_gitlab_username(SA3, "@sid", by=LEADER)
    run_once(settings, datetime.now(UTC))
    assert [a["username"] for a in fake_gitlab.issues("sa-triage-boards/emea")[0]["assignees"]] == ["sid"]
    assert len(ephemerals_for(fake_slack, SA3)) == 1


def hook(client, payload, *, token=WEBHOOK_SECRET, uuid="u-1"):
    headers = {"X-Gitlab-Event": "Issue Hook", "X-Gitlab-Event-UUID": uuid, "Content-Type": "application/json"}
    if token is not None:
        headers["X-Gitlab-Token"] = token
    return client.post("/gitlab/webhook", content=json.dumps(payload), headers=headers)


def test_board_drag_updates_request_card_and_thread_once(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    services = Services(settings, make_engine(settings.database_url))
    services.claim(1, SA1)
    run_once(settings, datetime.now(UTC))
    before = len(thread(fake_slack, card))

    payload = fake_gitlab.edit_issue_as_user(PROJECT, 1, labels=["SA Activity", "SA POV", "SA Demo Ready"],
                                             assignee_usernames=["sam"])
    r = hook(client, payload, uuid="drag-1")
    assert r.status_code == 200 and r.json()["result"].startswith("applied")
    assert services.get(1).status == "demo_ready"
    assert hook(client, payload, uuid="drag-1").json()["result"].startswith("duplicate")
    run_once(settings, datetime.now(UTC))
    replies = thread(fake_slack, card)
    assert len(replies) == before + 1 and "demo_ready" in replies[-1]["text"]
    assert fake_gitlab.calls_matching("PUT", r"/issues/1$")[-1:] and \
        len([c for c in fake_gitlab.calls_matching("PUT", r"/issues/1$")]) == 1  # nothing pushed back

    # The app's own change echoing back as a hook posts nothing.
    services.set_status(1, SA1, "doing")
    run_once(settings, datetime.now(UTC))
    issue = fake_gitlab.issue(PROJECT, 1)
    echo = fake_gitlab.edit_issue_as_user(PROJECT, 1, labels=issue["labels"], assignee_usernames=["sam"])
    assert hook(client, echo, uuid="echo-1").json()["result"] == "no change"

    closed = fake_gitlab.edit_issue_as_user(PROJECT, 1, state="closed")
    assert hook(client, closed, uuid="close-1").json()["result"] == "applied: done"
    assert services.get(1).status == "done"


def test_webhook_auth_and_bad_input(client, fake_slack, fake_gitlab, settings):
    payload = load_payload("issue_event.json")
    assert hook(client, payload, token=None).status_code == 401
    assert hook(client, payload, token="wrong").status_code == 401
    r = client.post("/gitlab/webhook", content=b"{not json", headers={"X-Gitlab-Token": WEBHOOK_SECRET})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    assert hook(client, payload).json()["result"].startswith("ignored")  # not ours
    push = {"object_kind": "push"}
    assert hook(client, push, uuid="p").json()["result"].startswith("ignored")


def test_note_hook_posts_comment_in_thread_but_not_own_notes(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    payload = fake_gitlab.note_hook_payload(PROJECT, 1, "Customer is on GitLab 16.8 <!channel>", "sam")
    r = client.post("/gitlab/webhook", content=json.dumps(payload),
                    headers={"X-Gitlab-Token": WEBHOOK_SECRET, "X-Gitlab-Event": "Note Hook"})
    assert r.json()["result"] == "applied: comment"
    run_once(settings, datetime.now(UTC))
    replies = thread(fake_slack, card)
    assert "16.8" in replies[-1]["text"] and "<!channel>" not in replies[-1]["text"]


def test_two_sas_claim_at_once_exactly_one_wins(db_url, config_path, fake_slack, fake_gitlab):
    """Real threads, SQLite and PostgreSQL: the conditional UPDATE lets exactly one claim through."""
    settings = make_settings(DATABASE_URL=db_url, TRIAGE_CONFIG=str(config_path))
    upgrade(db_url)
    services = Services(settings, make_engine(db_url))
    for i in range(10):
        res = services.submit(submission_key=f"V{i}", requester=AE, cleaned={**GOOD, "opportunity": None})
        barrier = threading.Barrier(2)
        outcomes: dict[str, str] = {}

        def go(sa: str, rid: int = res.request_id, barrier=barrier, outcomes=outcomes) -> None:
            barrier.wait()
            try:
                services.claim(rid, sa)
                outcomes[sa] = "won"
            except AlreadyClaimed:
                outcomes[sa] = "lost"

        threads = [threading.Thread(target=go, args=(sa,)) for sa in (SA1, SA2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(outcomes.values()) == ["lost", "won"]
        winner = next(sa for sa, o in outcomes.items() if o == "won")
        assert services.get(res.request_id).owner == winner


def test_drift_repair_applies_board_changes_whose_hooks_were_lost(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    services = Services(settings, make_engine(settings.database_url))
    services.claim(1, SA1)
    now = datetime.now(UTC)
    run_once(settings, now)
    # Someone drags the card to "SA Doing" on the board; the webhook never arrives.
    fake_gitlab.edit_issue_as_user(PROJECT, 1, labels=["SA Activity", "SA POV", "SA Doing"],
                                   assignee_usernames=["sam"])
    run_once(settings, now + timedelta(minutes=6))
    assert services.get(1).status == "doing"
    assert "doing" in thread(fake_slack, card)[-1]["text"]
    puts = len(fake_gitlab.calls_matching("PUT", r"/issues/1$"))
    run_once(settings, now + timedelta(minutes=12))  # nothing new: nothing applied, nothing pushed
    assert len(fake_gitlab.calls_matching("PUT", r"/issues/1$")) == puts


def test_drift_repair_does_not_undo_changes_still_queued_for_gitlab(client, fake_slack, fake_gitlab, settings):
    filed(client, fake_slack, settings)
    services = Services(settings, make_engine(settings.database_url))
    now = datetime.now(UTC)
    fake_gitlab.fail("PUT", r"/issues/1$", status=503, times=50)
    services.claim(1, SA1)
    run_once(settings, now + timedelta(minutes=6))  # the PUT fails; the board still shows it unclaimed
    assert services.get(1).owner == SA1 and services.get(1).status == "claimed"


def submit_small_modal(client, fake_slack, user: str, field: str, text: str):
    opened = list(fake_slack.views.values())[-1]
    p = load_payload("view_submission_bolt_minimal.json")
    p["user"] = {"id": user, "username": "u", "name": "u", "team_id": "T111"}
    p["view"] = {**opened, "state": {"values": {field: {field: {"type": "plain_text_input", "value": text}}}}}
    return post_slack_payload(client, p)


def test_needs_info_and_answer_through_slack(client, fake_slack, fake_gitlab, settings):
    card = filed(client, fake_slack, settings)
    services = Services(settings, make_engine(settings.database_url))
    click(client, fake_slack, card, "needs_info", OUTSIDER)
    wait_for(lambda: ephemerals_for(fake_slack, OUTSIDER), what="refusal")
    click(client, fake_slack, card, "needs_info", SA1)
    wait_for(lambda: fake_slack.calls_to("views.open")[-1].args["view"]["callback_id"] == "sa_needs_info_modal",
             what="needs info modal")
    assert submit_small_modal(client, fake_slack, SA1, "question", "   ").json()["response_action"] == "errors"
    r = submit_small_modal(client, fake_slack, SA1, "question", "Who signs off on the POV?")
    assert r.status_code == 200 and services.get(1).status == "waiting"
    run_once(settings, datetime.now(UTC))

    dm = next(m for m in fake_slack.messages_in(AE) if "Who signs off" in json.dumps(m))
    p = load_payload("block_actions_message_button.json")
    p["user"] = {"id": AE}
    p["channel"] = {"id": fake_slack.dm_channel(AE)}
    p["container"] = {"type": "message", "message_ts": dm["ts"], "channel_id": fake_slack.dm_channel(AE)}
    p["trigger_id"] = fake_slack.new_trigger_id()
    p["actions"] = [{"action_id": "answer_needs_info", "block_id": "sa_card:1", "type": "button", "value": "1",
                     "action_ts": "1.2"}]
    assert post_slack_payload(client, p).status_code == 200
    wait_for(lambda: fake_slack.calls_to("views.open")[-1].args["view"]["callback_id"] == "sa_answer_modal",
             what="answer modal")
    submit_small_modal(client, fake_slack, AE, "answer", "The CFO, Dana Ruiz.")
    assert services.get(1).status == "open"  # nobody had claimed it: back to the queue, clock running
    run_once(settings, datetime.now(UTC))
    assert "Dana Ruiz" in thread(fake_slack, card)[-1]["text"]
