"""Fixtures for the Salesforce parts: the fake org (HTTPS on 127.0.0.1) seeded with fields, stages and users."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.salesforce_api import FakeSalesforce
from triage.salesforce_crm import SalesforceCRM

OPEN_OPP = "0065g00000AbCdE"  # at Technical Evaluation, Command Plan partly filled in
EARLY_OPP = "006Hs00001XyZ9q"  # at Prospecting
CLOSED_OPP = "0063000000LnqvW"  # Closed Lost
BLANK_OPP = "006A000000Qz8fk"  # at Discovery, no Command Plan fields filled in
MISSING_OPP = "006bm00000ZpLmN"  # does not exist

STAGES = ["Prospecting", "Discovery", "Scoping", "Technical Evaluation", "Proposal", "Negotiating"]
FIELDS = {"why_now": "Why_Now__c", "pain": "Identified_Pain__c", "champion": "Champion__c",
          "command_plan_url": "Technical_Close_Plan__c"}
PRIMARY_SA = "Primary_SA__c"

SALESFORCE_TOML = f"""
[salesforce]
url = "https://acme.lightning.force.com"
stages = {STAGES!r}
min_stage = "Discovery"
lookup_seconds = 1.0

[salesforce.fields]
why_now = "Why_Now__c"
pain = "Identified_Pain__c"
champion = "Champion__c"
command_plan_url = "Technical_Close_Plan__c"
primary_sa = "Primary_SA__c"
""".replace("'", '"')


def seed(fake: FakeSalesforce) -> None:
    for name, ftype in (("Why_Now__c", "textarea"), ("Identified_Pain__c", "textarea"),
                        ("Champion__c", "string"), ("Technical_Close_Plan__c", "url"), (PRIMARY_SA, "reference")):
        fake.add_field(name, type=ftype)
    fake.set_stages([*STAGES, "Closed Won", "Closed Lost"])
    fake.add_opportunity(OPEN_OPP, stage="Technical Evaluation", account="Acme Corp",
                         Why_Now__c="Their Jenkins contract ends in March and the CTO wants one platform.",
                         Champion__c="Dana Lee, VP Platform")
    fake.add_opportunity(EARLY_OPP, stage="Prospecting", account="Initech")
    fake.add_opportunity(CLOSED_OPP, stage="Closed Lost", account="Globex")
    fake.add_opportunity(BLANK_OPP, stage="Discovery", account="Umbrella Health")
    for email, name in (("sam@example.com", "Sam Architect"), ("sasha@example.com", "Sasha Two")):
        fake.add_user(email, name=name)


@pytest.fixture(scope="session")
def _salesforce_server() -> Iterator[FakeSalesforce]:
    with FakeSalesforce() as fake:
        yield fake


@pytest.fixture
def fake_salesforce(_salesforce_server: FakeSalesforce) -> FakeSalesforce:
    _salesforce_server.reset()
    seed(_salesforce_server)
    return _salesforce_server


@pytest.fixture
def crm(fake_salesforce: FakeSalesforce) -> Iterator[SalesforceCRM]:
    c = SalesforceCRM(client_id=fake_salesforce.client_id, client_secret=fake_salesforce.client_secret,
                      login_url=fake_salesforce.login_url, fields=FIELDS, primary_sa_field=PRIMARY_SA,
                      verify=fake_salesforce.ca_file, timeout=5.0)
    yield c
    c.close()


@pytest.fixture
def sf_settings(tmp_path, sqlite_url, fake_slack, fake_gitlab, fake_salesforce):
    """The app's settings with Slack, GitLab and Salesforce all pointing at their fakes."""
    from tests.conftest import BOT_TOKEN, CONFIG_TOML, GITLAB_TOKEN, SIGNING_SECRET, WEBHOOK_SECRET, make_settings

    path = tmp_path / "triage-sf.toml"
    path.write_text(CONFIG_TOML + SALESFORCE_TOML)
    return make_settings(
        DATABASE_URL=sqlite_url, TRIAGE_CONFIG=str(path), SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET, SLACK_API_URL=fake_slack.url, GITLAB_URL=fake_gitlab.url,
        GITLAB_TOKEN=GITLAB_TOKEN, GITLAB_WEBHOOK_SECRET=WEBHOOK_SECRET, TRIAGE_EMBEDDED_WORKER=False,
        SALESFORCE_CLIENT_ID=fake_salesforce.client_id, SALESFORCE_CLIENT_SECRET=fake_salesforce.client_secret,
        SALESFORCE_LOGIN_URL=fake_salesforce.login_url, SALESFORCE_CA_BUNDLE=fake_salesforce.ca_file,
    )


@pytest.fixture
def sf_services(sf_settings):
    from triage.db import make_engine
    from triage.migrate import upgrade
    from triage.services import Services
    from triage.worker import build_crm

    upgrade(sf_settings.database_url)
    services = Services(sf_settings, make_engine(sf_settings.database_url))
    crm = build_crm(sf_settings)
    services.set_crm(crm)
    yield services
    crm.close()
    services.engine.dispose()


@pytest.fixture
def sf_client(sf_settings):
    """The real ASGI app with Salesforce configured (no embedded worker: tests drive run_once)."""
    from fastapi.testclient import TestClient

    from triage.migrate import upgrade
    from triage.web import create_app

    upgrade(sf_settings.database_url)
    app = create_app(sf_settings, migrate=False, worker=False)
    with TestClient(app) as c:
        yield c
