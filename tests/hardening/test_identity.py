"""Rule 6: nobody claims someone else's identity. A typed GitLab username is used only once GitLab shows
the Slack user's e-mail for it, or when a leader gave it; leaders assign only the queue's SAs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from tests.conftest import EMEA_CHANNEL, LEADER, OUTSIDER, SA1, SA2, SA3, wait_for
from tests.flows.test_intake import GOOD
from tests.flows.test_work import click, filed
from triage.core.errors import NotAllowed
from triage.worker import run_once

EMEA = "sa-triage-boards/emea"


def ephemerals_for(fake_slack, user):
    return [e for e in fake_slack.ephemerals if e.get("user") == user]


def test_an_sa_who_types_a_leaders_username_is_not_assigned_as_the_leader(app, fake_slack, fake_gitlab):
    fake_gitlab.add_user("lee", email="lee@example.com", public_email="lee@example.com", name="Lee Leader", id=601)
    filed(app.client, fake_slack, app.settings, {**GOOD, "queue": "emea"}, channel=EMEA_CHANNEL)
    app.services.claim(1, SA3)  # Sid: no e-mail in Slack, so he is asked for his GitLab username
    run_once(app.settings, datetime.now(UTC))
    app.services.link_gitlab_username(SA3, "@lee")  # ...and types the leader's
    run_once(app.settings, datetime.now(UTC))
    assert fake_gitlab.issues(EMEA)[0]["assignees"] == []
    told = ephemerals_for(fake_slack, SA3)[-1]
    assert "can't confirm it is you" in json.dumps(told) and "@lee" in json.dumps(told)
    # The claim stands in Slack; the username was forgotten, so nothing later assigns the leader either.
    assert app.services.get(1).owner == SA3
    app.services.set_status(1, SA3, "doing")
    run_once(app.settings, datetime.now(UTC))
    assert fake_gitlab.issues(EMEA)[0]["assignees"] == []


def test_a_username_whose_public_email_matches_the_slack_email_is_used(app, fake_slack, fake_gitlab):
    # Sasha's Slack e-mail is sasha@example.com; GitLab user "sasha-ops" shows it publicly too.
    fake_gitlab.add_user("sasha-ops", email="sasha@example.com", public_email="sasha@example.com",
                         name="Sasha Ops", id=602)
    filed(app.client, fake_slack, app.settings, {**GOOD, "queue": "emea"}, channel=EMEA_CHANNEL)
    app.services.link_gitlab_username(SA2, "sasha-ops")
    app.services.claim(1, SA2)
    run_once(app.settings, datetime.now(UTC))
    assert [a["username"] for a in fake_gitlab.issues(EMEA)[0]["assignees"]] == ["sasha-ops"]


def test_only_leaders_link_someone_else(app):
    with pytest.raises(NotAllowed):
        app.services.link_gitlab_username(SA3, "sid", by=SA1)
    assert app.services.link_gitlab_username(SA3, "sid", by=LEADER) == 0


def test_a_leader_can_assign_only_the_queues_sas_and_is_told_otherwise(app, fake_slack, fake_gitlab):
    from blocks.request_modal import request_modal
    from tests.conftest import AMER_CHANNEL, post_slack_payload, submission_payload

    values = {"request_type": "event", "queue": "amer-east", "customer_name": "Acme Corp",
              "event_name": "Acme DevOps Day", "event_location": "Boston", "event_competency": "CI/CD",
              "event_date": datetime.now(UTC).date().replace(year=datetime.now(UTC).year + 1).isoformat()}
    event_view = request_modal(request_type="event", queues=[("amer-east", "AMER East"), ("emea", "EMEA")])
    r = post_slack_payload(app.client, submission_payload({**event_view, "id": "VEVENT0001"}, values))
    assert r.json().get("response_action") == "update", r.json()
    run_once(app.settings, datetime.now(UTC))
    card = fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)[-1]
    click(app.client, fake_slack, card, "assign", LEADER, selected_user=OUTSIDER)
    wait_for(lambda: ephemerals_for(fake_slack, LEADER), what="the leader to be told")
    assert "isn't one of the amer-east SAs" in ephemerals_for(fake_slack, LEADER)[-1]["text"]
    assert app.services.get(1).owner is None
    click(app.client, fake_slack, card, "assign", LEADER, selected_user=SA1)
    wait_for(lambda: app.services.get(1).owner == SA1, what="assigned to an SA of the queue")
