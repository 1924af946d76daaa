"""Own the miss: after a breach, a leader or the SA who has the request records why."""

from __future__ import annotations

from datetime import timedelta

import pytest

from blocks.ids import BreachReason
from blocks.small_modals import BREACH_REASON_LABELS
from tests.conftest import AMER_CHANNEL, LEADER, OUTSIDER, SA1
from tests.flows.test_intake import GOOD, open_modal, submit
from tests.sla_flow.conftest import PROJECT, card_ts, events, latest_request, request_row, submit_direct
from triage.core.errors import InvalidTransition, NotAllowed
from triage.services.sla_sweep import BREACH_REASONS, record_breach_reason
from triage.worker import run_once

H = timedelta(hours=1)


def test_reasons_match_the_modal_options():
    assert {str(k): v for k, v in BREACH_REASON_LABELS.items()} == BREACH_REASONS
    assert set(BREACH_REASONS) == {r.value for r in BreachReason}


@pytest.fixture
def breached(client, fake_slack, settings):
    submit(client, open_modal(client, fake_slack), GOOD)
    request = latest_request(settings)
    t0 = request.created_at
    run_once(settings, t0 + timedelta(minutes=1))
    run_once(settings, t0 + 25 * H)
    return request.id, t0


def test_leader_records_the_reason_on_request_issue_and_thread(breached, settings, fake_slack, fake_gitlab,
                                                               services_of):
    rid, t0 = breached
    services = services_of(settings)
    now = t0 + 26 * H
    note = "Two SAs out sick.\n/close\n@everyone please help"
    res = record_breach_reason(services.engine, rid, LEADER, "capacity", note, now, config=services.config)
    assert res.changed
    assert request_row(settings, rid).breach_reason == "capacity"
    (event,) = events(settings, rid, "breach_reason")
    assert event.actor == LEADER and event.detail["reason"] == "capacity" and event.detail["note"] == note.strip()

    again = record_breach_reason(services.engine, rid, LEADER, "capacity", note, now, config=services.config)
    assert not again.changed  # the same modal submitted twice
    run_once(settings, now + timedelta(minutes=1))

    issue = fake_gitlab.issues(PROJECT)[0]
    notes = [n["body"] for n in fake_gitlab.notes(PROJECT, issue["iid"]) if "SLA missed" in n["body"]]
    assert len(notes) == 1 and "No SA had capacity" in notes[0] and "Two SAs out sick" in notes[0]
    assert issue["state"] == "opened"  # "/close" in the note was neutralised, not run
    thread = fake_slack.messages_in(AMER_CHANNEL, thread_ts=card_ts(fake_slack, rid))
    assert sum("recorded why the SLA was missed" in (m.get("text") or "") for m in thread) == 1

    changed = record_breach_reason(services.engine, rid, LEADER, "late_triage", "", now, config=services.config)
    assert changed.changed and request_row(settings, rid).breach_reason == "late_triage"
    assert len(events(settings, rid, "breach_reason")) == 2


def test_owner_may_record_others_may_not(breached, settings, services_of):
    rid, t0 = breached
    services = services_of(settings)
    with pytest.raises(NotAllowed):
        record_breach_reason(services.engine, rid, OUTSIDER, "capacity", None, t0 + 26 * H, config=services.config)
    services.claim(rid, SA1, now=t0 + 26 * H)
    res = record_breach_reason(services.engine, rid, SA1, "no_context", None, t0 + 27 * H, config=services.config)
    assert res.changed


def test_reason_rules(breached, settings, services_of):
    rid, t0 = breached
    services = services_of(settings)
    with pytest.raises(InvalidTransition):
        record_breach_reason(services.engine, rid, LEADER, "bad_luck", None, t0 + 26 * H, config=services.config)
    with pytest.raises(InvalidTransition):  # "other" needs a note
        record_breach_reason(services.engine, rid, LEADER, "other", "  ", t0 + 26 * H, config=services.config)
    services.claim(rid, SA1, now=t0 + 26 * H)

    on_time = submit_direct(services, now=t0, key="VONTIME001", customer_name="On Time Inc")
    services.claim(on_time, SA1, now=t0 + H)
    with pytest.raises(InvalidTransition):  # allocated within its SLA: nothing to own
        record_breach_reason(services.engine, on_time, LEADER, "capacity", None, t0 + 30 * H, config=services.config)
