"""The [salesforce] config section, SALESFORCE_* settings, and `triage check` against the fake org."""

from __future__ import annotations

import pytest

from tests.conftest import CONFIG_TOML, make_settings
from tests.salesforce.conftest import SALESFORCE_TOML
from triage.config import parse_config
from triage.core.errors import ConfigError
from triage.ops import check


def test_salesforce_section_parses():
    import tomllib

    sf = parse_config(tomllib.loads(SALESFORCE_TOML)).salesforce
    assert sf.url == "https://acme.lightning.force.com"
    assert sf.min_stage == "Discovery" and sf.stages[0] == "Prospecting"
    assert sf.fields.prefill() == {"why_now": "Why_Now__c", "pain": "Identified_Pain__c",
                                   "champion": "Champion__c", "command_plan_url": "Technical_Close_Plan__c"}


@pytest.mark.parametrize(("section", "message"), [
    ({"min_stage": "Discovery", "stages": ["Prospecting"]}, "salesforce: min_stage 'Discovery' is not one of"),
    ({"fields": {"why_now": "Why Now"}}, "salesforce.fields.why_now: 'Why Now' is not a Salesforce field API name"),
    ({"lookup_seconds": 3}, "salesforce.lookup_seconds: must be more than 0 and at most 2.5"),
    ({"url": "acme.my.salesforce.com"}, "salesforce.url: 'acme.my.salesforce.com' is not an https URL"),
    ({"fields": {"why": "X__c"}}, "salesforce.fields.why: unknown key"),
])
def test_bad_salesforce_config_is_one_readable_line(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({"salesforce": section})


def test_settings_default_login_url_and_configured_flag():
    s = make_settings()
    assert s.salesforce_login_url == "https://login.salesforce.com"
    assert not s.salesforce_configured
    s = make_settings(SALESFORCE_CLIENT_ID="id", SALESFORCE_CLIENT_SECRET="secret",
                      SALESFORCE_LOGIN_URL="https://acme.my.salesforce.com/")
    assert s.salesforce_configured and s.salesforce_login_url == "https://acme.my.salesforce.com"


def _sf_settings(tmp_path, fake, toml=SALESFORCE_TOML, secret=None):
    path = tmp_path / "triage.toml"
    path.write_text(CONFIG_TOML + toml)
    return make_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", TRIAGE_CONFIG=str(path),
                         SALESFORCE_CLIENT_ID=fake.client_id, SALESFORCE_CLIENT_SECRET=secret or fake.client_secret,
                         SALESFORCE_LOGIN_URL=fake.login_url, SALESFORCE_CA_BUNDLE=fake.ca_file)


def _salesforce_lines(settings) -> list[str]:
    out: list[str] = []
    check(settings, out=out.append)
    return [line for line in out if line[4:].lstrip().startswith("salesforce")]


def test_check_logs_in_and_finds_every_configured_field(tmp_path, fake_salesforce):
    lines = _salesforce_lines(_sf_settings(tmp_path, fake_salesforce))
    assert all(line.startswith("ok ") for line in lines), lines
    assert any("logged in" in line for line in lines)
    assert sum("[salesforce.fields]" in line for line in lines) == 5
    assert any("all 6 in the StageName picklist" in line for line in lines)
    assert len(fake_salesforce.calls_to("describe")) == 1


def test_check_names_a_missing_field_a_wrong_type_and_an_unknown_stage(tmp_path, fake_salesforce):
    toml = (SALESFORCE_TOML.replace('"Why_Now__c"', '"WhyNow__c"').replace('champion = "Champion__c"',
            'champion = "CloseDate"').replace('"Negotiating"', '"Negotiation/Review"'))
    lines = _salesforce_lines(_sf_settings(tmp_path, fake_salesforce, toml))
    fails = [line for line in lines if line.startswith("FAIL")]
    assert any("why_now = WhyNow__c: no such field on Opportunity" in line for line in fails), fails
    assert any("champion = CloseDate: is a date field" in line for line in fails), fails
    assert any("not in the org's StageName picklist: Negotiation/Review" in line for line in fails), fails


def test_check_with_wrong_credentials_fails_without_printing_the_secret(tmp_path, fake_salesforce):
    lines = _salesforce_lines(_sf_settings(tmp_path, fake_salesforce, secret="Q7nopeQ7"))
    assert lines[0].startswith("FAIL salesforce: login at") and "invalid client credentials" in lines[0]
    assert not any("Q7nopeQ7" in line for line in lines)


def test_check_without_salesforce_says_optional_and_does_not_fail(tmp_path):
    path = tmp_path / "triage.toml"
    path.write_text(CONFIG_TOML)
    lines = _salesforce_lines(make_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}", TRIAGE_CONFIG=str(path)))
    assert lines == ["ok  salesforce: not configured (optional): set SALESFORCE_CLIENT_ID and "
                     "SALESFORCE_CLIENT_SECRET to check opportunities and write back"]
