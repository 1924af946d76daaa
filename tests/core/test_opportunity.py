"""Opportunity rules: who may start an SA request on it, write-back, technical outcomes and win rate."""

from __future__ import annotations

import pytest

from triage.core.opportunity import (
    OpportunityRecord,
    Outcome,
    check_opportunity,
    missing_values,
    validate_outcome,
    win_rate,
)

STAGES = ("Prospecting", "Discovery", "Scoping", "Technical Evaluation")
OPP = "0065g00000AbCdE"


def record(stage: str, *, closed: bool = False, **values) -> OpportunityRecord:
    return OpportunityRecord(id=OPP + "AAV", name="Acme", stage=stage, is_closed=closed, values=values)


def test_an_open_opportunity_at_or_past_the_qualified_stage_is_usable():
    assert check_opportunity(record("Discovery"), OPP, stages=STAGES, min_stage="Discovery") is None
    assert check_opportunity(record("Technical Evaluation"), OPP, stages=STAGES, min_stage="Discovery") is None


def test_messages_name_what_is_wrong():
    assert check_opportunity(record("Closed Lost", closed=True), OPP, stages=STAGES, min_stage="Discovery") == (
        f"Opportunity {OPP} is Closed Lost")
    assert check_opportunity(record("Prospecting"), OPP, stages=STAGES, min_stage="Discovery") == (
        f"Opportunity {OPP} is at stage Prospecting; SA requests start at Discovery")
    assert "was not found in Salesforce" in check_opportunity(None, OPP, stages=STAGES, min_stage="Discovery")


def test_without_a_stage_order_only_open_counts_and_unknown_stages_pass():
    assert check_opportunity(record("Prospecting"), OPP) is None
    assert check_opportunity(record("Id. Decision Makers"), OPP, stages=STAGES, min_stage="Discovery") is None


def test_missing_values_are_what_the_ae_wrote_and_salesforce_lacks():
    rec = record("Discovery", why_now="Contract ends in March", pain=None, champion="  ")
    assert missing_values(rec, {"why_now": "other text", "pain": "Slow releases", "champion": "Dana"}) == {
        "pain": "Slow releases", "champion": "Dana"}
    assert missing_values(rec, {"pain": "   "}) == {}


def test_outcome_needs_evidence_but_for_not_applicable():
    assert validate_outcome(None, "")["outcome"]
    assert "who validated what" in validate_outcome("technical_win", "great call")["evidence"]
    assert validate_outcome("technical_win", "CTO Dana Lee confirmed SSO and audit criteria met") == {}
    assert validate_outcome("not_applicable", "") == {}
    assert validate_outcome("withdrew", "")["evidence"]
    assert validate_outcome("technical_loss", "x" * 3001)["evidence"].startswith("Keep it under")


def test_honest_win_rate_counts_withdrawals_and_the_flattering_one_does_not():
    rate = win_rate(["technical_win"] * 3 + ["technical_loss"] + ["withdrew"] * 2 + ["not_applicable"] * 5)
    assert (rate.wins, rate.losses, rate.withdrew, rate.not_applicable) == (3, 1, 2, 5)
    assert rate.honest == pytest.approx(3 / 6)
    assert rate.excluding_withdrawals == pytest.approx(3 / 4)
    assert win_rate(["not_applicable"]).honest is None
    assert win_rate([]).as_dict()["win_rate"] is None
    assert set(Outcome) == {"technical_win", "technical_loss", "withdrew", "not_applicable"}
