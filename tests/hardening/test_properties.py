"""Property tests per inbound route: payloads built from the reference shapes, then mutated in type, size,
nesting, encoding and ids. Every answer is a 2xx or a 4xx; a 4xx stores nothing; a 2xx loses nothing.
On SQLite and PostgreSQL (the `db_url` fixture, through the `app` fixture)."""

from __future__ import annotations

import json
import uuid

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import WEBHOOK_SECRET, load_payload
from tests.flows.test_work import filed
from tests.hardening.mutations import RAW_BREAKS, break_raw, mutated
from triage.models import OutboxEntry, Request, RequestEvent, WebhookDelivery

PROJECT = "sa-triage-boards/amer-east"
GITLAB_FOCUS = (("object_attributes",), ("project",), ("labels",), ("user",), ("issue",), ("assignees",),
                ("object_kind",))
SLACK_FOCUS = (("view", "state"), ("view", "private_metadata"), ("view", "id"), ("actions",), ("user",),
               ("type",), ("trigger_id",), ("message",), ("channel",), ("container",), ("callback_id",))
FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


def counts(app) -> tuple:
    with app.services.engine.connect() as conn:
        rows = tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                     for t in (Request, RequestEvent, OutboxEntry, WebhookDelivery))
        state = conn.execute(sa.select(Request.status, Request.owner).order_by(Request.id)).all()
    return rows, tuple(map(tuple, state))


def test_gitlab_webhook_answers_2xx_or_4xx_and_stores_nothing_on_a_4xx(app, fake_slack, fake_gitlab):
    filed(app.client, fake_slack, app.settings)
    bases = [
        fake_gitlab.edit_issue_as_user(PROJECT, 1, labels=["SA Activity", "SA Doing"], assignee_usernames=["sam"]),
        fake_gitlab.edit_issue_as_user(PROJECT, 1, state="closed"),
        fake_gitlab.note_hook_payload(PROJECT, 1, "A comment from the board", "sam"),
        load_payload("issue_event.json"),
        load_payload("note_event_issue.json"),
    ]

    @FAST
    @given(base=st.sampled_from(bases), data=st.data(), raw_break=st.none() | RAW_BREAKS,
           key=st.none() | st.text(max_size=40) | st.just("k" * 300))
    def check(base, data, raw_break, key):
        payload = data.draw(st.one_of(st.just(base), mutated(base, focus=GITLAB_FOCUS)))
        raw = json.dumps(payload).encode()
        if raw_break:
            raw = break_raw(raw, raw_break)
        headers = {"X-Gitlab-Token": WEBHOOK_SECRET, "Content-Type": "application/json",
                   "X-Gitlab-Event": "Note Hook" if base.get("object_kind") == "note" else "Issue Hook"}
        if key is not None and key.isprintable() and key.isascii():
            headers["Idempotency-Key"] = key + uuid.uuid4().hex  # fresh: dedupe must not hide a failure
        before = counts(app)
        r = app.client.post("/gitlab/webhook", content=raw, headers=headers)
        after = counts(app)
        assert r.status_code < 500, (r.status_code, r.text)
        if r.status_code >= 400:
            assert after == before, "a refused delivery changed the database"
            assert "error" in r.json()
        else:
            result = r.json()["result"]
            if result.startswith("applied"):
                assert after[0][1] > before[0][1], "applied but no event recorded"
            else:
                assert after[0][:3] == before[0][:3] and after[1] == before[1], result

    check()


def _click_payload(fake_slack, card: dict, user: str) -> dict:
    """The block_actions payload of the first button on the card, as Slack would send it."""
    p = load_payload("block_actions_message_button.json")
    p["user"] = {"id": user}
    p["channel"] = {"id": "C0AMEREAST"}
    p["container"] = {"type": "message", "message_ts": card["ts"], "channel_id": "C0AMEREAST"}
    p["message"] = {**p["message"], "ts": card["ts"], "blocks": card["blocks"]}
    p["trigger_id"] = fake_slack.new_trigger_id()
    block = next(b for b in card["blocks"] if b["type"] == "actions")
    element = block["elements"][0]
    p["actions"] = [{"action_id": element["action_id"], "block_id": block.get("block_id", "x"),
                     "type": element["type"], "action_ts": "1.1",
                     **({"value": element["value"]} if "value" in element else {})}]
    return p


def _slack_bases(app, fake_slack) -> list[tuple[str, dict]]:
    """("form"|"json"|"command", payload) for each kind of Slack request, as the app receives them."""
    from tests.conftest import shortcut_payload, submission_payload
    from tests.flows.test_intake import GOOD, open_modal
    card = filed(app.client, fake_slack, app.settings)
    view = open_modal(app.client, fake_slack)
    return [
        ("form", shortcut_payload(fake_slack)),
        ("form", {**load_payload("message_shortcut.json"), "trigger_id": fake_slack.new_trigger_id()}),
        ("form", submission_payload(view, GOOD)),
        ("form", _click_payload(fake_slack, card, "U0SA00001")),
        ("command", {**load_payload("slash_command.json")["parsed"], "command": "/sa-sla", "user_id": "U0LEAD001"}),
        ("json", load_payload("url_verification.json")),
    ]


def test_slack_events_answers_2xx_or_4xx_and_stores_nothing_on_a_4xx(app, fake_slack, fake_gitlab):
    from urllib.parse import urlencode

    from tests.conftest import sign

    bases = _slack_bases(app, fake_slack)

    @settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(base=st.sampled_from(bases), data=st.data(), raw_break=st.none() | RAW_BREAKS)
    def check(base, data, raw_break):
        kind, payload = base
        if kind == "command":
            payload = data.draw(st.one_of(st.just(payload), mutated(payload, max_changes=2)))
            form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()} \
                if isinstance(payload, dict) else {"x": json.dumps(payload)}
            body = urlencode(form).encode()
            ctype = "application/x-www-form-urlencoded"
        else:
            payload = data.draw(st.one_of(st.just(payload), mutated(payload, focus=SLACK_FOCUS)))
            raw = json.dumps(payload).encode()
            if raw_break:
                raw = break_raw(raw, raw_break)
            if kind == "form":
                body = b"payload=" + __import__("urllib.parse").parse.quote_from_bytes(raw).encode()
                ctype = "application/x-www-form-urlencoded"
            else:
                body, ctype = raw, "application/json"
        before = counts(app)
        r = app.client.post("/slack/events", content=body, headers={**sign(body), "Content-Type": ctype})
        after = counts(app)
        assert r.status_code < 500, (r.status_code, r.text, payload)
        if r.status_code >= 400:
            assert after == before, "a refused Slack request changed the database"

    check()
