"""Rules 2 and 5 through POST /slack/events: wrong shapes are 4xx or inline errors, never 500; a listener
that fails still answers; replayed small-modal submissions do nothing new. SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import sqlalchemy as sa

from tests.conftest import AE, SA1, post_slack_payload, submission_payload, wait_for
from tests.flows.test_intake import GOOD, open_modal
from tests.flows.test_work import click, filed, thread
from tests.hardening.test_gitlab_edges import _fail_updates
from triage.models import Request
from triage.worker import run_once


def stored(app) -> int:
    with app.services.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(Request)).scalar_one()


def test_a_view_submission_without_state_is_a_400_and_stores_nothing(app, fake_slack):
    view = open_modal(app.client, fake_slack)
    p = submission_payload(view, GOOD)
    del p["view"]["state"]
    r = post_slack_payload(app.client, p)
    assert r.status_code == 400 and "view.state" in r.json()["error"]
    assert stored(app) == 0


def test_a_selected_option_that_is_a_string_is_a_400(app, fake_slack):
    view = open_modal(app.client, fake_slack)
    p = submission_payload(view, GOOD)
    p["view"]["state"]["values"]["queue"]["queue"]["selected_option"] = "amer-east"
    r = post_slack_payload(app.client, p)
    assert r.status_code == 400 and "selected_option" in r.json()["error"]
    assert stored(app) == 0


def test_a_date_of_ten_to_the_twenty_is_a_400(app, fake_slack):
    view = open_modal(app.client, fake_slack)
    p = submission_payload(view, GOOD)
    p["view"]["state"]["values"]["preferred_date_1"]["preferred_date_1"]["selected_date_time"] = 10**20
    r = post_slack_payload(app.client, p)
    assert r.status_code == 400 and "selected_date_time" in r.json()["error"]
    assert stored(app) == 0


def test_ids_too_large_for_the_database_are_not_found_never_500(app, fake_slack, fake_gitlab):
    card = filed(app.client, fake_slack, app.settings)
    # A button whose value is a 20-digit id: "I can't find that request", to the person who clicked.
    forged = copy.deepcopy(card)
    for block in forged["blocks"]:
        for element in block.get("elements") or ():
            if "value" in element:
                element["value"] = "99999999999999999999"
    click(app.client, fake_slack, forged, "claim", SA1)
    wait_for(lambda: any("can't find" in e.get("text", "") for e in fake_slack.ephemerals), what="the note")
    # A small modal whose private_metadata is such an id: an inline error.
    view = _needs_info_view(app, fake_slack, card)
    p = submission_payload(view, {"question": "Which cloud?"}, user=SA1)
    p["view"]["private_metadata"] = "99999999999999999999"
    r = post_slack_payload(app.client, p)
    assert r.status_code == 200 and r.json()["errors"] == {"question": "That request no longer exists."}
    # The request modal's metadata with such an id: ignored, the request is stored.
    view = open_modal(app.client, fake_slack)
    p = submission_payload(view, GOOD)
    p["view"]["private_metadata"] = json.dumps({"duplicate_ok": 10**20})
    r = post_slack_payload(app.client, p)
    assert r.status_code == 200 and "already open" in r.text and stored(app) == 1  # told of the open one


def _needs_info_view(app, fake_slack, card) -> dict:
    app.services.claim(1, SA1)
    before = len(fake_slack.calls_to("views.open"))
    click(app.client, fake_slack, card, "needs_info", SA1)
    call = wait_for(lambda: fake_slack.calls_to("views.open")[before:], what="views.open")[0]
    view = call.args["view"]
    return view if isinstance(view, dict) else json.loads(view)


def test_a_submission_whose_listener_fails_gets_an_answer_not_a_500(app, fake_slack, fake_gitlab):
    card = filed(app.client, fake_slack, app.settings)
    view = _needs_info_view(app, fake_slack, card)
    _fail_updates(app, True)  # the database refuses the change
    r = post_slack_payload(app.client, submission_payload(view, {"question": "Which cloud?"}, user=SA1))
    _fail_updates(app, False)
    assert r.status_code == 200
    answer = r.json()
    assert answer["response_action"] == "update" and "error id" in json.dumps(answer["view"])


def test_a_button_whose_listener_fails_after_ack_is_still_acknowledged(app, fake_slack, fake_gitlab):
    card = filed(app.client, fake_slack, app.settings)
    _fail_updates(app, True)
    click(app.client, fake_slack, card, "claim", SA1)  # asserts the 200
    _fail_updates(app, False)
    assert app.services.get(1).owner is None


# ------------------------------------------------------------------ rule 5: replays do nothing new


def test_the_same_needs_info_submission_three_times_asks_once(app, fake_slack, fake_gitlab):
    card = filed(app.client, fake_slack, app.settings)
    view = _needs_info_view(app, fake_slack, card)
    payload = submission_payload(view, {"question": "Which cloud are they on?"}, user=SA1)
    for _ in range(3):
        r = post_slack_payload(app.client, payload)
        assert r.status_code == 200 and not r.content.strip().startswith(b'{"response_action": "errors"')
    run_once(app.settings, datetime.now(UTC))
    issue_notes = fake_gitlab.notes("sa-triage-boards/amer-east", 1)
    assert len([n for n in issue_notes if "Which cloud" in n["body"]]) == 1
    assert len([m for m in thread(fake_slack, card) if "Which cloud" in m["text"]]) == 1
    assert len([m for m in fake_slack.messages_in(AE) if "Which cloud" in json.dumps(m)]) == 1


def _modal_view(app, fake_slack, card, action: str, user: str) -> dict:
    before = len(fake_slack.calls_to("views.open"))
    click(app.client, fake_slack, card, action, user)
    call = wait_for(lambda: fake_slack.calls_to("views.open")[before:], what="views.open")[0]
    view = call.args["view"]
    return view if isinstance(view, dict) else json.loads(view)


def test_the_same_decline_submission_twice_declines_once_and_answers_quietly(app, fake_slack, fake_gitlab):
    card = filed(app.client, fake_slack, app.settings)
    view = _modal_view(app, fake_slack, card, "decline", SA1)
    payload = submission_payload(view, {"reason": "No SA capacity for this region"}, user=SA1)
    first, second = (post_slack_payload(app.client, payload) for _ in range(2))
    assert first.status_code == second.status_code == 200
    assert b"errors" not in second.content  # not "already declined": the replay is simply acknowledged
    run_once(app.settings, datetime.now(UTC))
    assert len([m for m in fake_slack.messages_in(AE) if "No SA capacity" in json.dumps(m)]) == 1
    notes = fake_gitlab.notes("sa-triage-boards/amer-east", 1)
    assert len([n for n in notes if "No SA capacity" in n["body"]]) == 1


def test_answer_and_link_replays_of_one_view_change_nothing(app, fake_slack, fake_gitlab):
    filed(app.client, fake_slack, app.settings)
    app.services.claim(1, SA1)
    app.services.needs_info(1, SA1, "Which cloud?", once="VASK1")
    assert app.services.answer(1, AE, "AWS", once="VANSWER1").changed
    assert not app.services.answer(1, AE, "AWS", once="VANSWER1").changed
    assert app.services.get(1).status == "claimed"
    assert app.services.link_gitlab_username(SA1, "sam", once="VLINK1") == 1
    assert app.services.link_gitlab_username(SA1, "sam", once="VLINK1") == 0


def test_nul_bytes_in_what_an_ae_types_never_reach_the_database(app, fake_slack):
    view = open_modal(app.client, fake_slack)
    r = post_slack_payload(app.client, submission_payload(view, {**GOOD, "customer_name": "Acme\x00 Corp"}))
    assert r.status_code == 200 and r.json()["response_action"] == "update"
    assert app.services.get(1).customer_name == "Acme Corp"


def test_half_a_character_in_what_an_ae_types_is_stored_as_a_replacement_character(app, fake_slack):
    # A lone surrogate (JSON can escape one) can't be encoded for the database: before, the submission
    # failed, and with it every other submission stored in the same transaction.
    view = open_modal(app.client, fake_slack)
    r = post_slack_payload(app.client, submission_payload(view, {**GOOD, "customer_name": "Acme\ud800 Corp"}))
    assert r.status_code == 200 and r.json()["response_action"] == "update"
    assert app.services.get(1).customer_name == "Acme\ufffd Corp"
