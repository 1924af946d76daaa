"""Salesforce in the loop through signed Slack requests, as an AE, an SA and a leader use it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from tests.conftest import (
    AE,
    AMER_CHANNEL,
    LEADER,
    SA1,
    SA2,
    load_payload,
    post_slack_payload,
    submission_payload,
    wait_for,
)
from tests.flows.test_intake import GOOD, open_modal, submit
from tests.flows.test_work import click
from tests.salesforce.conftest import BLANK_OPP, CLOSED_OPP, EARLY_OPP, OPEN_OPP, PRIMARY_SA
from triage.db import make_engine
from triage.services import Services
from triage.worker import run_once

PROJECT = "sa-triage-boards/amer-east"


def services_of(settings) -> Services:
    return Services(settings, make_engine(settings.database_url))


def block(view, block_id):
    return next(b for b in view["blocks"] if b.get("block_id") == block_id)


def test_the_modal_looks_the_opportunity_up_as_the_id_is_typed(sf_client, fake_slack, fake_salesforce):
    open_modal(sf_client, fake_slack)
    opened = list(fake_slack.views.values())[-1]
    assert block(opened, "opportunity")["dispatch_action"] is True
    payload = load_payload("block_actions_message_button.json")
    for k in ("message", "channel", "container", "response_url"):
        payload.pop(k, None)
    payload["container"] = {"type": "view", "view_id": opened["id"]}
    typed = {"request_type": "opportunity", "queue": "amer-east", "opportunity": OPEN_OPP,
             "pain": "Releases take two weeks because every pipeline is hand-built."}
    payload["view"] = {**opened, "state": submission_payload(opened, typed)["view"]["state"]}
    payload["user"] = {"id": AE}
    payload["actions"] = [{"action_id": "opportunity", "block_id": "opportunity", "type": "plain_text_input",
                           "value": OPEN_OPP, "action_ts": "1.3"}]
    assert post_slack_payload(sf_client, payload).status_code == 200
    new = wait_for(lambda: fake_slack.calls_to("views.update"), what="views.update")[0].args["view"]
    assert block(new, "customer_name")["element"]["initial_value"] == "Acme Corp"  # from the account
    assert block(new, "why_now")["element"]["initial_value"].startswith("Their Jenkins contract")
    assert block(new, "champion")["element"]["initial_value"] == "Dana Lee, VP Platform"
    assert block(new, "pain")["element"]["initial_value"] == typed["pain"]  # what the AE typed wins


def test_typing_a_closed_opportunity_says_so_at_the_top_of_the_form(sf_client, fake_slack, fake_salesforce):
    open_modal(sf_client, fake_slack)
    opened = list(fake_slack.views.values())[-1]
    assert post_slack_payload(sf_client, typed_payload(opened, CLOSED_OPP)).status_code == 200
    new = wait_for(lambda: fake_slack.calls_to("views.update"), what="views.update")[0].args["view"]
    assert new["blocks"][0]["type"] == "context"
    assert f"Opportunity {CLOSED_OPP} is Closed Lost" in new["blocks"][0]["elements"][0]["text"]
    # A half-typed id asks Salesforce nothing; the whole one typed after it does.
    post_slack_payload(sf_client, typed_payload(opened, OPEN_OPP[:9]))
    post_slack_payload(sf_client, typed_payload(opened, OPEN_OPP))
    wait_for(lambda: len(fake_slack.calls_to("views.update")) == 2, what="second views.update")
    assert [c.query["q"].count(OPEN_OPP) for c in fake_salesforce.calls_to("query")] == [0, 1]


def typed_payload(opened, text):
    payload = load_payload("block_actions_message_button.json")
    for k in ("message", "channel", "container", "response_url"):
        payload.pop(k, None)
    payload["container"] = {"type": "view", "view_id": opened["id"]}
    payload["view"] = {**opened, "state": submission_payload(opened, {"opportunity": text})["view"]["state"]}
    payload["user"] = {"id": AE}
    payload["actions"] = [{"action_id": "opportunity", "block_id": "opportunity", "type": "plain_text_input",
                           "value": text, "action_ts": "1.4"}]
    return payload


def test_the_message_shortcut_prefills_from_salesforce(sf_client, fake_slack, fake_salesforce):
    p = load_payload("message_shortcut.json")
    p["trigger_id"] = fake_slack.new_trigger_id()
    p["callback_id"] = "sa_request_from_message"
    p["user"] = {"id": AE, "username": "alex", "team_id": "T111"}
    p["message"]["text"] = f"Can an SA join? https://acme.lightning.force.com/lightning/r/Opportunity/{OPEN_OPP}/view"
    assert post_slack_payload(sf_client, p).status_code == 200
    wait_for(lambda: fake_slack.calls_to("views.open"), what="views.open")
    new = wait_for(lambda: fake_slack.calls_to("views.update"), what="views.update")[0].args["view"]
    assert block(new, "customer_name")["element"]["initial_value"] == "Acme Corp"
    assert block(new, "champion")["element"]["initial_value"] == "Dana Lee, VP Platform"


def test_a_closed_opportunity_is_refused_inline(sf_client, fake_slack, fake_salesforce):
    view = open_modal(sf_client, fake_slack)
    r = submit(sf_client, view, {**GOOD, "opportunity": CLOSED_OPP})
    assert r.json() == {"response_action": "errors",
                        "errors": {"opportunity": f"Opportunity {CLOSED_OPP} is Closed Lost"}}


def test_an_early_stage_opportunity_is_refused_with_the_stage(sf_client, fake_slack, fake_salesforce, sf_settings):
    view = open_modal(sf_client, fake_slack)
    r = submit(sf_client, view, {**GOOD, "opportunity": EARLY_OPP})
    assert r.json()["errors"] == {
        "opportunity": f"Opportunity {EARLY_OPP} is at stage Prospecting; SA requests start at Discovery"}
    assert services_of(sf_settings).get(1) is None
    # The AE fixes the id and submits the same view again: one lookup per id (the answers are cached).
    r = submit(sf_client, view, {**GOOD, "opportunity": EARLY_OPP})
    assert len(fake_salesforce.calls_to("query")) == 1


def test_a_qualified_opportunity_is_filed_verified_and_the_command_plan_written_back(
        sf_client, fake_slack, fake_salesforce, sf_settings):
    view = open_modal(sf_client, fake_slack)
    r = submit(sf_client, view, {**GOOD, "opportunity": BLANK_OPP})
    assert r.json()["response_action"] == "update"
    assert services_of(sf_settings).get(1).salesforce_verified is True
    run_once(sf_settings, datetime.now(UTC))
    rec = fake_salesforce.opportunity(BLANK_OPP)
    assert rec["Why_Now__c"] == GOOD["why_now"] and rec["Identified_Pain__c"] == GOOD["pain"]
    assert len(fake_salesforce.calls_to("patch")) == 1
    assert any("Added to the opportunity's Command Plan" in m.get("text", "") for m in fake_slack.messages_in(AE))
    card = fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)[-1]
    assert "not verified" not in str(card["blocks"])


def test_salesforce_down_during_the_modal_never_blocks_and_the_card_says_not_verified(
        sf_client, fake_slack, fake_salesforce, sf_settings):
    view = open_modal(sf_client, fake_slack)
    fake_salesforce.set_down(True)
    r = submit(sf_client, view, {**GOOD, "opportunity": BLANK_OPP})
    assert r.json()["response_action"] == "update"  # saved
    assert services_of(sf_settings).get(1).salesforce_verified is False
    run_once(sf_settings, datetime.now(UTC))
    card = fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)[-1]
    assert "not verified" in str(card["blocks"])
    assert fake_salesforce.opportunity(BLANK_OPP)["Why_Now__c"] is None  # the write-back waits


def test_salesforce_answering_too_late_for_slack_means_not_verified(sf_client, fake_slack, fake_salesforce,
                                                                    sf_settings):
    view = open_modal(sf_client, fake_slack)
    fake_salesforce.set_delay("query", 2.5)  # inside Slack's 3 s, but past the 1 s budget of the test config
    r = submit(sf_client, view, {**GOOD, "opportunity": OPEN_OPP})
    assert r.json()["response_action"] == "update"
    assert services_of(sf_settings).get(1).salesforce_verified is False


def test_claim_unclaim_claim_from_the_card_sets_the_primary_sa_one_patch_each(
        sf_client, fake_slack, fake_salesforce, sf_settings):
    view = open_modal(sf_client, fake_slack)
    submit(sf_client, view, {**GOOD, "opportunity": OPEN_OPP})
    run_once(sf_settings, datetime.now(UTC))
    fake_salesforce.clear_calls()
    card = fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)[-1]
    click(sf_client, fake_slack, card, "claim", SA1)
    wait_for(lambda: services_of(sf_settings).get(1).owner == SA1, what="claim")
    run_once(sf_settings, datetime.now(UTC))
    sam = fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA]
    card = fake_slack.message(AMER_CHANNEL, card["ts"])
    click(sf_client, fake_slack, card, "unclaim", SA1)
    wait_for(lambda: services_of(sf_settings).get(1).owner is None, what="unclaim")
    run_once(sf_settings, datetime.now(UTC))
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] is None
    card = fake_slack.message(AMER_CHANNEL, card["ts"])
    click(sf_client, fake_slack, card, "claim", SA2)
    wait_for(lambda: services_of(sf_settings).get(1).owner == SA2, what="claim again")
    run_once(sf_settings, datetime.now(UTC))
    sasha = fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA]
    assert sam and sasha and sam != sasha
    assert [c.body[PRIMARY_SA] for c in fake_salesforce.calls_to("patch")] == [sam, None, sasha]


def test_marking_done_asks_for_the_outcome_which_lands_on_gitlab_and_the_card(
        sf_client, fake_slack, fake_gitlab, fake_salesforce, sf_settings):
    view = open_modal(sf_client, fake_slack)
    submit(sf_client, view, {**GOOD, "opportunity": OPEN_OPP})
    run_once(sf_settings, datetime.now(UTC))
    card = fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)[-1]
    click(sf_client, fake_slack, card, "claim", SA1)
    wait_for(lambda: services_of(sf_settings).get(1).owner == SA1, what="claim")
    run_once(sf_settings, datetime.now(UTC))
    card = fake_slack.message(AMER_CHANNEL, card["ts"])
    opens = len(fake_slack.calls_to("views.open"))
    click(sf_client, fake_slack, card, "status", SA1,
          selected_option={"text": {"type": "plain_text", "text": "Done"}, "value": "1:done"})
    modal = wait_for(lambda: fake_slack.calls_to("views.open")[opens:], what="outcome modal")[0].args["view"]
    assert modal["callback_id"] == "sa_outcome_modal"
    assert [o["value"] for o in block(modal, "outcome")["element"]["options"]] == [
        "technical_win", "technical_loss", "withdrew", "not_applicable"]
    held = list(fake_slack.views.values())[-1]

    r = post_slack_payload(sf_client, outcome_submission(held, "technical_win", "great demo", SA1))
    assert r.json()["response_action"] == "errors" and "who validated what" in r.json()["errors"]["evidence"]
    evidence = "Dana Lee (VP Platform) and the security lead confirmed SSO and audit trail criteria in writing."
    r = post_slack_payload(sf_client, outcome_submission(held, "technical_win", evidence, SA1))
    assert r.status_code == 200 and "errors" not in r.text
    assert services_of(sf_settings).get(1).technical_outcome == "technical_win"
    run_once(sf_settings, datetime.now(UTC))
    notes = [n["body"] for n in fake_gitlab.notes(PROJECT, 1)]
    assert any("Technical outcome: Technical win" in n and "SSO and audit trail" in n for n in notes)
    card = fake_slack.message(AMER_CHANNEL, card["ts"])
    assert "Technical win" in str(card["blocks"]) and "Correct outcome" in str(card["blocks"])

    # The SA may not change it afterwards; a leader may correct it from the card.
    r = post_slack_payload(sf_client, outcome_submission(held, "technical_loss", evidence, SA1))
    assert r.json()["response_action"] == "errors"
    opens = len(fake_slack.calls_to("views.open"))
    click(sf_client, fake_slack, card, "record_outcome", LEADER)
    wait_for(lambda: fake_slack.calls_to("views.open")[opens:], what="correction modal")
    held = list(fake_slack.views.values())[-1]
    post_slack_payload(sf_client, outcome_submission(held, "withdrew", "We withdrew: on-prem mainframe "
                                                     "integration we do not have.", LEADER))
    assert services_of(sf_settings).get(1).technical_outcome == "withdrew"


def outcome_submission(view, outcome, evidence, user):
    p = load_payload("view_submission_bolt_minimal.json")
    v = copy.deepcopy(view)
    v["state"] = {"values": {
        "outcome": {"outcome": {"type": "radio_buttons", "selected_option": {
            "text": {"type": "plain_text", "text": outcome}, "value": outcome}}},
        "evidence": {"evidence": {"type": "plain_text_input", "value": evidence}}}}
    p["view"] = v
    p["user"] = {"id": user, "username": "u", "name": "u", "team_id": p["team"]["id"]}
    return p


def test_healthz_says_whether_salesforce_is_configured(sf_client, client):
    assert sf_client.get("/healthz").json()["salesforce"]["detail"].startswith("configured")
    part = client.get("/healthz").json()["salesforce"]
    assert part["ok"] is True and part["detail"].startswith("not configured (optional)")


def test_unassigning_on_the_gitlab_board_clears_the_primary_sa(sf_client, fake_slack, fake_gitlab, fake_salesforce,
                                                               sf_settings):
    from tests.flows.test_work import hook

    view = open_modal(sf_client, fake_slack)
    submit(sf_client, view, {**GOOD, "opportunity": OPEN_OPP})
    run_once(sf_settings, datetime.now(UTC))
    services_of(sf_settings).claim(1, SA1)
    run_once(sf_settings, datetime.now(UTC))
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA]
    payload = fake_gitlab.edit_issue_as_user(PROJECT, 1, assignee_usernames=[])
    assert hook(sf_client, payload, uuid="unassign-1").json()["result"].startswith("applied")
    run_once(sf_settings, datetime.now(UTC))
    assert services_of(sf_settings).get(1).owner is None
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] is None


def test_a_request_stored_not_verified_is_checked_when_salesforce_is_back(sf_client, fake_slack, fake_salesforce,
                                                                         sf_settings):
    view = open_modal(sf_client, fake_slack)
    fake_salesforce.set_down(True)
    submit(sf_client, view, {**GOOD, "opportunity": BLANK_OPP})
    view = open_modal(sf_client, fake_slack)
    submit(sf_client, view, {**GOOD, "opportunity": CLOSED_OPP, "queue": "emea"})
    run_once(sf_settings, datetime.now(UTC))
    fake_salesforce.set_down(False)
    run_once(sf_settings, datetime.now(UTC) + timedelta(minutes=15))  # past the outbox's backoff
    assert services_of(sf_settings).get(1).salesforce_verified is True
    card = fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)[-1]
    assert "not verified" not in str(card["blocks"])
    assert fake_salesforce.opportunity(BLANK_OPP)["Why_Now__c"] == GOOD["why_now"]  # the write-back landed too
    # The closed one stays "not verified", and its thread says what Salesforce says now.
    assert services_of(sf_settings).get(2).salesforce_verified is False
    emea_card = fake_slack.messages_in("C0EMEA001", top_level_only=True)[-1]
    replies = fake_slack.messages_in("C0EMEA001", thread_ts=emea_card["ts"])
    assert any(f"Opportunity {CLOSED_OPP}AAR is Closed Lost" in m["text"] for m in replies)
