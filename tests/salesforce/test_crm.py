"""The Salesforce adapter with the real simple-salesforce client against the fake org over HTTPS."""

from __future__ import annotations

import pytest

from tests.salesforce.conftest import BLANK_OPP, CLOSED_OPP, EARLY_OPP, MISSING_OPP, OPEN_OPP, PRIMARY_SA
from triage.core.errors import Rejected, RetryLater
from triage.salesforce_crm import SalesforceCRM


def test_lookup_reads_stage_account_and_command_plan_in_one_query(crm, fake_salesforce):
    opp = crm.opportunity(OPEN_OPP)
    assert opp is not None
    assert opp.stage == "Technical Evaluation" and not opp.is_closed
    assert opp.account_name == "Acme Corp"
    assert opp.values["champion"] == "Dana Lee, VP Platform"
    assert opp.values["pain"] is None
    assert [c.route for c in fake_salesforce.calls] == ["token", "query"]
    token = fake_salesforce.calls_to("token")[0]
    assert token.body == {"grant_type": "client_credentials"}  # the key and secret go in Basic auth
    assert token.headers["authorization"].startswith("Basic ")


def test_closed_and_missing_opportunities(crm):
    closed = crm.opportunity(CLOSED_OPP)
    assert closed is not None and closed.is_closed and closed.stage == "Closed Lost"
    assert crm.opportunity(MISSING_OPP) is None


def test_answers_are_cached_briefly(crm, fake_salesforce):
    crm.opportunity(OPEN_OPP)
    crm.opportunity(OPEN_OPP + "AAV")  # the same record by its 18-character id
    crm.opportunity(MISSING_OPP)
    crm.opportunity(MISSING_OPP)
    assert len(fake_salesforce.calls_to("query")) == 2
    crm.opportunity(OPEN_OPP, fresh=True)
    assert len(fake_salesforce.calls_to("query")) == 3


def test_an_expired_token_is_renewed_once_and_the_call_repeated(crm, fake_salesforce):
    crm.opportunity(OPEN_OPP)
    fake_salesforce.expire_tokens()
    assert crm.opportunity(EARLY_OPP).stage == "Prospecting"
    assert [c.route for c in fake_salesforce.calls] == ["token", "query", "query", "token", "query"]


@pytest.mark.parametrize(("status", "code"), [(503, "SERVER_UNAVAILABLE"), (403, "REQUEST_LIMIT_EXCEEDED")])
def test_outage_and_api_limit_mean_retry_later(crm, fake_salesforce, status, code):
    crm.opportunity(OPEN_OPP)
    fake_salesforce.fail("query", status=status)
    with pytest.raises(RetryLater, match=code):
        crm.opportunity(EARLY_OPP)
    assert crm.opportunity(EARLY_OPP).stage == "Prospecting"  # the failure was not cached


def test_salesforce_down_at_login_is_retry_later(crm, fake_salesforce):
    fake_salesforce.set_down(True)
    with pytest.raises(RetryLater):
        crm.opportunity(OPEN_OPP)


def test_wrong_credentials_are_rejected_without_leaking_the_secret(fake_salesforce):
    crm = SalesforceCRM(client_id=fake_salesforce.client_id, client_secret="Z9wrongZ9",
                        login_url=fake_salesforce.login_url, verify=fake_salesforce.ca_file)
    with pytest.raises(Rejected, match="invalid client credentials") as exc:
        crm.opportunity(OPEN_OPP)
    assert "Z9wrongZ9" not in str(exc.value)


def test_a_lookup_never_holds_the_caller_past_its_budget(crm, fake_salesforce):
    crm.connect()
    fake_salesforce.set_delay("query", 2.5)  # Salesforce answers, but too late for Slack's 3 s
    with pytest.raises(RetryLater, match=r"within 0\.3 s"):
        crm.opportunity(OPEN_OPP, budget=0.3)
    fake_salesforce.set_delay("query", 0)
    assert crm.opportunity(OPEN_OPP, budget=2.0).account_name == "Acme Corp"


def test_fill_blank_writes_only_what_salesforce_lacks_in_one_patch(crm, fake_salesforce):
    wrote = crm.fill_blank(OPEN_OPP, {"why_now": "A different why now the AE typed in the modal",
                                      "pain": "Release takes three weeks and fails half the time"})
    assert wrote == {"pain": "Release takes three weeks and fails half the time"}
    patches = fake_salesforce.calls_to("patch")
    assert len(patches) == 1 and patches[0].body == {"Identified_Pain__c": wrote["pain"]}
    rec = fake_salesforce.opportunity(OPEN_OPP)
    assert rec["Why_Now__c"].startswith("Their Jenkins contract")  # never overwritten
    assert crm.fill_blank(OPEN_OPP, {"pain": "again"}) == {}  # a retry writes nothing twice
    assert len(fake_salesforce.calls_to("patch")) == 1


def test_a_validation_rule_refusal_names_the_field(crm, fake_salesforce):
    fake_salesforce.reject_field("Identified_Pain__c", "Identified Pain must be at least 40 characters")
    with pytest.raises(Rejected, match="Identified_Pain__c: Identified Pain must be at least 40 characters"):
        crm.fill_blank(BLANK_OPP, {"pain": "too short"})
    assert fake_salesforce.opportunity(BLANK_OPP)["Identified_Pain__c"] is None


def test_primary_sa_by_email(crm, fake_salesforce):
    user = crm.user_id_by_email("Sam@Example.com")
    assert user is not None and user.startswith("005")
    assert crm.user_id_by_email("nobody@example.com") is None
    crm.set_primary_sa(OPEN_OPP, user)
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] == user
    crm.set_primary_sa(OPEN_OPP, None)
    assert fake_salesforce.opportunity(OPEN_OPP)[PRIMARY_SA] is None


def test_describe_lists_fields_types_and_stages(crm):
    fields = crm.describe_fields("Opportunity")
    assert fields["Why_Now__c"].type == "textarea" and fields["Why_Now__c"].updateable
    assert fields[PRIMARY_SA].reference_to == ("User",)
    assert "Technical Evaluation" in fields["StageName"].picklist
    assert not fields["IsClosed"].updateable
