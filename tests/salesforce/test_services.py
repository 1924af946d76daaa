"""The Salesforce use cases over the real adapter and the fake org: check, write-back, Primary SA, outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlmodel import select

from tests.conftest import AE, AMER_CHANNEL, LEADER, SA1, SA2
from tests.salesforce.conftest import BLANK_OPP, CLOSED_OPP, EARLY_OPP, MISSING_OPP, OPEN_OPP, PRIMARY_SA
from triage.core.errors import NotAllowed, ValidationFailed
from triage.db import session_scope
from triage.models import OutboxEntry
from triage.worker import Worker

CLEANED = {
    "request_type": "opportunity", "queue": "amer-east", "customer_name": "Umbrella Health",
    "opportunity": BLANK_OPP + "IAB", "command_plan_url": "https://docs.example.com/cp/umbrella",
    "why_now": "Their audit is due in April and the current tooling cannot produce the evidence.",
    "pain": "Every release needs a manual change board because nothing is traceable.",
    "champion": "Riley Chen, Director of Platform", "asks": ["demo"], "hosting": "saas",
}


def submit(services, cleaned=None, key="V1", verified=True):
    return services.submit(submission_key=key, requester=AE, cleaned=cleaned or CLEANED,
                           salesforce_verified=verified)


def drain(services):
    Worker(services).run_once(datetime.now(UTC))


def test_check_says_what_is_wrong_and_prefills_what_salesforce_has(sf_services):
    assert sf_services.check_opportunity(CLOSED_OPP).error == f"Opportunity {CLOSED_OPP} is Closed Lost"
    assert sf_services.check_opportunity(EARLY_OPP).error == (
        f"Opportunity {EARLY_OPP} is at stage Prospecting; SA requests start at Discovery")
    assert "not found" in sf_services.check_opportunity(MISSING_OPP).error
    ok = sf_services.check_opportunity(f"https://acme.lightning.force.com/lightning/r/Opportunity/{OPEN_OPP}/view")
    assert ok.error is None and ok.verified is True
    assert ok.prefill == {"customer_name": "Acme Corp", "champion": "Dana Lee, VP Platform",
                          "why_now": "Their Jenkins contract ends in March and the CTO wants one platform."}


def test_an_outage_or_a_slow_answer_means_not_verified_never_an_error(sf_services, fake_salesforce):
    fake_salesforce.set_down(True)
    check = sf_services.check_opportunity(OPEN_OPP)
    assert check.verified is False and check.error is None
    fake_salesforce.set_down(False)
    fake_salesforce.set_delay("*", 2.5)
    check = sf_services.check_opportunity(BLANK_OPP)  # lookup_seconds = 1.0 in the test config
    assert check.verified is False and check.error is None and "within 1 s" in check.problem


def test_write_back_fills_only_blank_fields_once_and_tells_the_ae(sf_services, fake_salesforce, fake_slack):
    submit(sf_services)
    drain(sf_services)
    rec = fake_salesforce.opportunity(BLANK_OPP)
    assert rec["Why_Now__c"] == CLEANED["why_now"] and rec["Identified_Pain__c"] == CLEANED["pain"]
    assert rec["Champion__c"] == CLEANED["champion"] and rec["Technical_Close_Plan__c"] == CLEANED["command_plan_url"]
    assert len(fake_salesforce.calls_to("patch")) == 1
    dms = [m for m in fake_slack.messages_in(AE) if "Salesforce" in m.get("text", "")]
    assert len(dms) == 1 and "Why Now, Identified Pain, Champion, Technical Close Plan link" in dms[0]["text"]
    drain(sf_services)  # nothing left to do: no second PATCH, no second DM
    assert len(fake_salesforce.calls_to("patch")) == 1
    assert len([m for m in fake_slack.messages_in(AE) if "Salesforce" in m.get("text", "")]) == 1


def test_write_back_waits_out_an_outage_and_lands_once(sf_services, fake_salesforce):
    submit(sf_services, {**CLEANED, "opportunity": OPEN_OPP})
    fake_salesforce.set_down(True)
    drain(sf_services)
    with session_scope(sf_services.engine) as s:
        entry = s.exec(select(OutboxEntry).where(OutboxEntry.kind == "salesforce_writeback")).one()
        assert entry.done_at is None and "503" in entry.last_error
        due = entry.next_attempt_at
    fake_salesforce.set_down(False)
    Worker(sf_services).run_once(due + timedelta(seconds=1))
    rec = fake_salesforce.opportunity(OPEN_OPP)
    assert rec["Why_Now__c"].startswith("Their Jenkins contract")  # Salesforce's own text is kept
    assert rec["Identified_Pain__c"] == CLEANED["pain"]
    assert len(fake_salesforce.calls_to("patch")) == 1


def test_a_refused_write_back_is_told_to_the_ae_and_not_retried(sf_services, fake_salesforce, fake_slack):
    fake_salesforce.reject_field("Identified_Pain__c", "Identified Pain must name a business outcome")
    submit(sf_services)
    drain(sf_services)
    dm = [m for m in fake_slack.messages_in(AE) if "Salesforce did not take" in m.get("text", "")]
    assert len(dm) == 1 and "Identified Pain must name a business outcome" in dm[0]["text"]
    drain(sf_services)
    assert len(fake_salesforce.calls_to("patch")) == 1


def test_claim_unclaim_claim_ends_with_the_last_sa_one_patch_each(sf_services, fake_salesforce):
    res = submit(sf_services, {**CLEANED, "opportunity": OPEN_OPP})
    sf_services.claim(res.request_id, SA1)
    drain(sf_services)
    sam_id = fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA]
    assert sam_id and sam_id.startswith("005")
    sf_services.unclaim(res.request_id, SA1)
    drain(sf_services)
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] is None
    sf_services.claim(res.request_id, SA2)
    drain(sf_services)
    sasha = fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA]
    assert sasha and sasha != sam_id
    primary_patches = [c for c in fake_salesforce.calls_to("patch") if PRIMARY_SA in (c.body or {})]
    assert [c.body[PRIMARY_SA] for c in primary_patches] == [sam_id, None, sasha]


def test_all_three_moves_queued_before_delivery_still_end_right(sf_services, fake_salesforce):
    res = submit(sf_services, {**CLEANED, "opportunity": OPEN_OPP})
    sf_services.claim(res.request_id, SA1)
    sf_services.unclaim(res.request_id, SA1)
    sf_services.claim(res.request_id, SA2)
    drain(sf_services)
    primary_patches = [c.body[PRIMARY_SA] for c in fake_salesforce.calls_to("patch") if PRIMARY_SA in (c.body or {})]
    assert len(primary_patches) == 3 and primary_patches[1] is None
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] == primary_patches[2]


def test_an_unclaim_leaves_a_primary_sa_someone_else_set_in_salesforce(sf_services, fake_salesforce):
    res = submit(sf_services, {**CLEANED, "opportunity": OPEN_OPP})
    sf_services.claim(res.request_id, SA1)
    drain(sf_services)
    other = fake_salesforce.add_user("someone@example.com")
    sf_services.crm.set_primary_sa(OPEN_OPP, other)  # an admin sets another Primary SA in Salesforce meanwhile
    sf_services.unclaim(res.request_id, SA1)
    drain(sf_services)
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] == other


def test_reassignment_by_a_leader_moves_the_primary_sa(sf_services, fake_salesforce):
    res = submit(sf_services, {**CLEANED, "opportunity": OPEN_OPP})
    sf_services.assign(res.request_id, LEADER, SA1)
    sf_services.assign(res.request_id, LEADER, SA2)
    drain(sf_services)
    sasha = sf_services.crm.user_id_by_email("sasha@example.com")
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] == sasha


def test_outcome_is_recorded_by_the_sa_noted_on_gitlab_and_correctable_by_a_leader(sf_services, fake_gitlab):
    res = submit(sf_services)
    sf_services.claim(res.request_id, SA1)
    sf_services.set_status(res.request_id, SA1, "done")
    with pytest.raises(ValidationFailed):  # "who validated what" is required for a win
        sf_services.record_outcome(res.request_id, SA1, "technical_win", "ok")
    change = sf_services.record_outcome(res.request_id, SA1, "technical_win",
                                        "Riley Chen (platform) and the security lead confirmed SSO, audit "
                                        "trail and the 10-minute pipeline criteria in writing.")
    assert change.changed and change.request.technical_outcome == "technical_win"
    with pytest.raises(NotAllowed):
        sf_services.record_outcome(res.request_id, SA1, "technical_loss", "Changed my mind about the result")
    sf_services.record_outcome(res.request_id, LEADER, "withdrew",
                               "We withdrew: the buyer needed an on-prem mainframe integration we lack.")
    drain(sf_services)
    notes = [n["body"] for n in fake_gitlab.notes("sa-triage-boards/amer-east", 1)]
    assert any("Technical outcome: Technical win" in n and "SSO, audit" in n for n in notes)
    assert any("Technical outcome: Withdrew" in n and "(corrected)" in n for n in notes)
    assert sf_services.get(res.request_id).technical_outcome == "withdrew"


def test_technical_summary_on_a_seeded_history(sf_services):
    start = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    history = [(SA1, "technical_win"), (SA1, "technical_win"), (SA1, "technical_loss"), (SA1, "withdrew"),
               (SA2, "technical_win"), (SA2, "withdrew"), (SA2, "not_applicable"), (SA2, None)]
    for i, (sa_user, outcome) in enumerate(history):
        with freeze_time(start + timedelta(hours=i)):
            rid = submit(sf_services, {**CLEANED, "opportunity": None}, key=f"V{i}", verified=None).request_id
            sf_services.claim(rid, sa_user)
        with freeze_time(start + timedelta(days=2 + i, hours=i)):
            sf_services.set_status(rid, sa_user, "done")
            if outcome:
                sf_services.record_outcome(rid, sa_user, outcome, "Evidence: stakeholders and criteria named here.")
    s = sf_services.technical_summary(datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC))
    t = s["totals"]
    assert (t["technical_wins"], t["technical_losses"], t["withdrew"], t["not_applicable"]) == (3, 1, 2, 1)
    assert t["win_rate"] == pytest.approx(3 / 6, abs=1e-4)
    assert t["win_rate_excluding_withdrawals"] == pytest.approx(3 / 4, abs=1e-4)
    assert t["done"] == 8 and t["outcome_missing"] == 1
    assert t["time_to_outcome_days"]["p50"] == pytest.approx(5.0, abs=0.1)
    sas = {row["slack_user"]: row for row in s["sas"]}
    assert sas[SA1]["win_rate"] == pytest.approx(2 / 4, abs=1e-4)
    assert sas[SA1]["win_rate_excluding_withdrawals"] == pytest.approx(2 / 3, abs=1e-4)
    assert sas[SA2]["win_rate"] == pytest.approx(1 / 2, abs=1e-4)
    assert sas[SA2]["win_rate_excluding_withdrawals"] == 1.0
    assert [q["queue"] for q in s["queues"]] == ["amer-east"]


def test_a_follow_up_may_concern_a_closed_deal_but_it_must_exist(sf_services):
    assert sf_services.check_opportunity(CLOSED_OPP, request_type="follow_up").error is None
    assert sf_services.check_opportunity(EARLY_OPP, request_type="security_assessment").error is None
    assert "not found" in sf_services.check_opportunity(MISSING_OPP, request_type="follow_up").error


def test_csv_columns_of_a_request_with_an_outcome(sf_services):
    from triage.services.outcomes import OUTCOME_CSV_COLUMNS, outcome_columns

    with freeze_time("2026-11-02 14:00:00"):
        rid = submit(sf_services, verified=False).request_id
        sf_services.claim(rid, SA1)
    with freeze_time("2026-11-05 02:00:00"):
        sf_services.set_status(rid, SA1, "done")
        sf_services.record_outcome(rid, SA1, "technical_loss", "The CISO chose the incumbent on audit criteria.")
    row = outcome_columns(sf_services.get(rid))
    assert tuple(row) == OUTCOME_CSV_COLUMNS
    assert row["salesforce_verified"] == "no" and row["technical_outcome"] == "technical_loss"
    assert row["days_to_outcome"] == 2.5 and row["outcome_by"] == SA1


def test_evidence_never_becomes_a_quick_action_or_a_mass_mention(sf_services, fake_gitlab, fake_slack):
    res = submit(sf_services)
    drain(sf_services)  # the card exists before anyone can click it
    sf_services.claim(res.request_id, SA1)
    drain(sf_services)
    sf_services.set_status(res.request_id, SA1, "done")
    sf_services.record_outcome(res.request_id, SA1, "technical_win",
                               "/close\n/label ~Expedite\n<!channel> the CTO @all signed off on the scorecard")
    drain(sf_services)
    assert fake_gitlab.executed_quick_actions == []
    card = fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)[-1]
    reply = [m["text"] for m in fake_slack.messages_in(AMER_CHANNEL, thread_ts=card["ts"])
             if "technical outcome" in m.get("text", "")][-1]
    assert "<!channel>" not in reply and "&lt;!channel&gt;" in reply


def test_a_worker_without_slack_waits_for_the_sas_email_instead_of_giving_up(sf_services, fake_salesforce,
                                                                             fake_slack):
    """The SA is found in Salesforce by their Slack email: a worker that has Salesforce but not Slack keeps
    the Primary SA waiting (and says why), and never tells the thread to set it by hand."""
    res = submit(sf_services, {**CLEANED, "opportunity": OPEN_OPP})
    drain(sf_services)
    sf_services.claim(res.request_id, SA1)
    assert sf_services.deliver_salesforce_due(notifier=None) == (1, 0, 1)
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] is None
    with session_scope(sf_services.engine) as s:
        waiting = s.exec(select(OutboxEntry).where(OutboxEntry.kind == "salesforce_primary_sa",
                                                   OutboxEntry.done_at.is_(None))).all()
        assert len(waiting) == 1 and "Slack is not configured" in waiting[0].last_error
    Worker(sf_services).run_once(datetime.now(UTC) + timedelta(hours=2))  # Slack answers at the next attempt
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] == sf_services.crm.user_id_by_email("sam@example.com")
    assert not any("Primary SA was not set" in m.get("text", "") for m in fake_slack.messages_in(AMER_CHANNEL))


def test_an_sa_salesforce_does_not_know_is_asked_to_set_the_primary_sa_by_hand(sf_services, fake_salesforce,
                                                                            fake_slack):
    from tests.conftest import SA3  # no email in Slack

    res = submit(sf_services, {**CLEANED, "opportunity": OPEN_OPP})
    drain(sf_services)
    sf_services.claim(res.request_id, SA3)
    drain(sf_services)
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] is None
    assert not [c for c in fake_salesforce.calls_to("patch") if PRIMARY_SA in (c.body or {})]
    card = fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)[-1]
    assert any("Primary SA was not set" in m["text"] for m in fake_slack.messages_in(AMER_CHANNEL,
                                                                                    thread_ts=card["ts"]))
