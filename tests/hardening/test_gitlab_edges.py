"""Rules 1, 2, 4 and 7 through POST /gitlab/webhook, with the fake GitLab and Slack, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tests.conftest import AMER_CHANNEL, WEBHOOK_SECRET, load_payload
from tests.flows.test_work import filed, thread
from triage.core.gitlab_text import marker
from triage.db import session_scope
from triage.models import RequestEvent
from triage.services.base import NOTE_MARKER
from triage.worker import run_once

PROJECT = "sa-triage-boards/amer-east"


def post(app, payload, *, event="Issue Hook", key=None, uuid=None, raw: bytes | None = None):
    headers = {"X-Gitlab-Token": WEBHOOK_SECRET, "X-Gitlab-Event": event, "Content-Type": "application/json"}
    if key:
        headers["Idempotency-Key"] = key
    if uuid:
        headers["X-Gitlab-Event-UUID"] = uuid
    return app.client.post("/gitlab/webhook", content=raw if raw is not None else json.dumps(payload),
                           headers=headers)


def events(app, kind=None) -> list[RequestEvent]:
    with session_scope(app.services.engine) as s:
        rows = list(s.execute(sa.select(RequestEvent).order_by(RequestEvent.id)).scalars().all())
        s.expunge_all()
    return [e for e in rows if kind is None or e.kind == kind]


def land(app, fake_slack) -> dict:
    card = filed(app.client, fake_slack, app.settings)
    assert app.services.get(1).gitlab_iid == 1
    return card


# ------------------------------------------------------------------ rule 1: an issue speaks only for itself


def test_a_copied_marker_in_another_issue_of_the_board_changes_nothing(app, fake_slack, fake_gitlab):
    card = land(app, fake_slack)
    decoy = fake_gitlab.add_issue(PROJECT, title="decoy", description=f"hi\n\n{marker(1)}")
    closed = fake_gitlab.edit_issue_as_user(PROJECT, decoy["iid"], state="closed", by="sam")
    r = post(app, closed, key="decoy-close")
    assert r.status_code == 200 and r.json()["result"] == "ignored: not an issue this app created"
    assert app.services.get(1).status == "open"
    note = fake_gitlab.note_hook_payload(PROJECT, decoy["iid"], "ha, closed your request", "sam")
    assert post(app, note, event="Note Hook", key="decoy-note").json()["result"].startswith("ignored")
    run_once(app.settings, datetime.now(UTC))
    assert all("ha, closed" not in m["text"] for m in thread(fake_slack, card))


def test_a_hook_from_an_unconfigured_project_changes_nothing(app, fake_slack, fake_gitlab):
    land(app, fake_slack)
    fake_gitlab.add_project("someone/elsewhere", id=900)
    fake_gitlab.add_issue("someone/elsewhere", title="x", description=marker(1))
    closed = fake_gitlab.edit_issue_as_user("someone/elsewhere", 1, state="closed", by="sam")
    assert post(app, closed, key="elsewhere").json()["result"] == "ignored: not a configured queue's project"
    assert app.services.get(1).status == "open"
    # Even claiming the board's path: the iid is the board's issue 1, but GitLab's global id is not ours.
    forged = copy.deepcopy(closed)
    forged["project"]["path_with_namespace"] = PROJECT
    assert post(app, forged, key="forged").json()["result"] == "ignored: not an issue this app created"
    assert app.services.get(1).status == "open"


def test_the_requests_own_issue_still_applies(app, fake_slack, fake_gitlab):
    land(app, fake_slack)
    closed = fake_gitlab.edit_issue_as_user(PROJECT, 1, state="closed", by="sam")
    assert post(app, closed, key="own-close").json()["result"] == "applied: done"
    assert app.services.get(1).status == "done"


# ------------------------------------------------------------------ rule 2: wrong shapes are 4xx




@pytest.mark.parametrize("mutate, where", [
    (lambda p: p["object_attributes"].update(iid=10**19), "object_attributes.iid"),
    (lambda p: p["object_attributes"].update(iid="1"), "object_attributes.iid"),
    (lambda p: p.update(labels=["SA Doing"]), "labels.0"),
    (lambda p: p.update(object_attributes=[p["object_attributes"]]), "object_attributes"),
    (lambda p: p["project"].update(path_with_namespace=["x"]), "project.path_with_namespace"),
    (lambda p: p["object_attributes"].update(assignee_ids=[True]), "object_attributes.assignee_ids.0"),
    (lambda p: p.pop("project"), "project"),
])
def test_a_payload_of_the_wrong_shape_is_a_400_naming_the_field(app, fake_slack, fake_gitlab, mutate, where):
    land(app, fake_slack)
    good = fake_gitlab.edit_issue_as_user(PROJECT, 1, state="closed", by="sam")
    payload = copy.deepcopy(good)
    mutate(payload)
    before = len(events(app))
    r = post(app, payload, key="bad")
    assert r.status_code == 400 and where in r.json()["error"]
    assert len(events(app)) == before and app.services.get(1).status == "open"
    # The same key with a good payload later still applies: nothing was recorded for the bad one.
    assert post(app, good, key="bad").json()["result"] == "applied: done"


def test_a_twenty_digit_marker_in_a_description_is_just_text(app, fake_slack, fake_gitlab):
    land(app, fake_slack)
    fake_gitlab.add_issue(PROJECT, title="x", description="<!-- triage-request: 99999999999999999999 -->")
    for i in range(4):  # four 500s in a row and GitLab would disable the hook
        hook = fake_gitlab.edit_issue_as_user(PROJECT, 2, state="closed" if i % 2 == 0 else "opened", by="sam")
        r = post(app, hook, key=f"big-{i}")
        assert r.status_code == 200 and r.json()["result"].startswith("ignored")


def test_json_nested_100000_deep_is_a_400(app):
    raw = b'{"object_kind": "issue", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    r = post(app, None, raw=raw)
    assert r.status_code == 400 and "nested deeper" in r.json()["error"]


def test_nul_bytes_in_a_payload_are_removed_before_the_database_sees_them(app, fake_slack, fake_gitlab):
    card = land(app, fake_slack)
    note = fake_gitlab.note_hook_payload(PROJECT, 1, "see\x00 the logs", "sam")
    note["user"]["username"] = "sa\x00m"
    r = post(app, note, event="Note Hook", key="nul")
    assert r.status_code == 200 and r.json()["result"] == "applied: comment"
    assert events(app, "gitlab_comment")[-1].actor == "sam"
    run_once(app.settings, datetime.now(UTC))
    assert "see the logs" in thread(fake_slack, card)[-1]["text"]


def test_unused_event_kinds_and_bodies_that_are_not_objects(app):
    assert post(app, {"object_kind": "push"}, event="Push Hook").json()["result"].startswith("ignored")
    assert post(app, None, raw=b"[1, 2]").status_code == 400
    assert post(app, None, raw=b"\xff\xfe").status_code == 400


# ------------------------------------------------------------------ rule 4: redeliveries


def _fail_updates(app, fail: bool) -> None:
    """The database refuses to change requests, as a full disk or a failover would (a trigger)."""
    engine = app.services.engine
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(sa.text("DROP TRIGGER IF EXISTS refuse"))
            if fail:
                conn.execute(sa.text("CREATE TRIGGER refuse BEFORE UPDATE ON request "
                                     "BEGIN SELECT RAISE(ABORT, 'disk full'); END"))
        else:
            conn.execute(sa.text("DROP TRIGGER IF EXISTS refuse ON request"))
            if fail:
                conn.execute(sa.text("CREATE OR REPLACE FUNCTION refuse() RETURNS trigger AS "
                                     "$$ BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql"))
                conn.execute(sa.text("CREATE TRIGGER refuse BEFORE UPDATE ON request "
                                     "FOR EACH ROW EXECUTE FUNCTION refuse()"))


def test_a_delivery_that_failed_is_applied_when_gitlab_retries_it(app, fake_slack, fake_gitlab):
    land(app, fake_slack)
    closed = fake_gitlab.edit_issue_as_user(PROJECT, 1, state="closed", by="sam")
    _fail_updates(app, True)
    r = post(app, closed, key="retry-me", uuid="e-1")
    assert r.status_code == 503 and "retries" in r.json()["error"]  # GitLab will retry it
    _fail_updates(app, False)
    r = post(app, closed, key="retry-me", uuid="e-1")
    assert r.json()["result"] == "applied: done"
    assert app.services.get(1).status == "done"
    assert post(app, closed, key="retry-me", uuid="e-1").json()["result"].startswith("duplicate")


def test_resend_request_mirrors_a_comment_once(app, fake_slack, fake_gitlab):
    card = land(app, fake_slack)
    note = fake_gitlab.note_hook_payload(PROJECT, 1, "Customer moved the call to Tuesday", "sam")
    assert post(app, note, event="Note Hook", key="k-1", uuid="ev-1").json()["result"] == "applied: comment"
    # "Resend request": same Idempotency-Key, new X-Gitlab-Event-UUID.
    assert post(app, note, event="Note Hook", key="k-1", uuid="ev-2").json()["result"].startswith("duplicate")
    run_once(app.settings, datetime.now(UTC))
    assert len([m for m in thread(fake_slack, card) if "Tuesday" in m["text"]]) == 1


def test_a_too_long_idempotency_key_is_refused(app):
    assert post(app, {"object_kind": "issue"}, key="k" * 500).status_code == 400


# ------------------------------------------------------------------ rule 7: comments can't hide or spoof


def test_a_persons_comment_with_the_apps_note_marker_is_still_mirrored(app, fake_slack, fake_gitlab):
    card = land(app, fake_slack)
    note = fake_gitlab.note_hook_payload(PROJECT, 1, f"Hidden from Slack? {NOTE_MARKER}", "sam")
    assert post(app, note, event="Note Hook", key="hide").json()["result"] == "applied: comment"
    run_once(app.settings, datetime.now(UTC))
    assert "Hidden from Slack?" in thread(fake_slack, card)[-1]["text"]


def test_the_apps_own_note_is_not_mirrored(app, fake_slack, fake_gitlab):
    land(app, fake_slack)
    note = fake_gitlab.note_hook_payload(PROJECT, 1, f"Claimed by Sam.\n\n{NOTE_MARKER}", "triage-bot")
    assert post(app, note, event="Note Hook", key="own").json()["result"] == "ignored: the app's own note"
    assert fake_gitlab.calls_matching("GET", r"/user$")  # learned who the app is on GitLab


def test_a_note_url_can_not_smuggle_markup_into_the_thread(app, fake_slack, fake_gitlab):
    card = land(app, fake_slack)
    note = fake_gitlab.note_hook_payload(PROJECT, 1, "look", "sam")
    note["object_attributes"]["url"] = "https://evil.example/<!channel>|click me"
    assert post(app, note, event="Note Hook", key="url").json()["result"] == "applied: comment"
    run_once(app.settings, datetime.now(UTC))
    text = thread(fake_slack, card)[-1]["text"]
    issue_url = app.services.get(1).gitlab_url
    assert "<!channel" not in text and "evil" not in text
    assert f"<{issue_url}#note_{note['object_attributes']['id']}|on GitLab>" in text
    assert fake_slack.messages_in(AMER_CHANNEL)  # sanity: the thread is the queue's


def test_reference_payload_shapes_parse(app):
    """GitLab's documented examples are readable (from a project the app doesn't serve: ignored, 200)."""
    assert post(app, load_payload("issue_event.json")).json()["result"].startswith("ignored")
    assert post(app, load_payload("note_event_issue.json"), event="Note Hook").json()["result"].startswith("ignored")


def test_the_lost_answer_search_trusts_only_issues_the_app_wrote(fake_gitlab):
    """The marker is a recovery hint for the worker alone, and only in issues by the app's own user."""
    from tests.conftest import GITLAB_TOKEN
    from triage.gitlab_tracker import GitLabTracker

    tracker = GitLabTracker(fake_gitlab.url, GITLAB_TOKEN)
    decoy = fake_gitlab.add_issue(PROJECT, title="decoy", description=f"x\n\n{marker(7)}")
    with fake_gitlab._lock:  # the same issue, written by a person instead of the app
        fake_gitlab._issue(fake_gitlab._project(PROJECT), decoy["iid"])["author_id"] = 501
    assert tracker.find_issue_by_marker(PROJECT, marker(7)) is None
    ours = fake_gitlab.add_issue(PROJECT, title="ours", description=f"y\n\n{marker(7)}")
    assert tracker.find_issue_by_marker(PROJECT, marker(7)).iid == ours["iid"]
    assert len(fake_gitlab.calls_matching("GET", r"/user$")) == 1  # asked once, remembered
    assert tracker.find_issue_by_marker(PROJECT, marker(8)) is None
    assert len(fake_gitlab.calls_matching("GET", r"/user$")) == 1


def test_the_same_delivery_arriving_twice_at_once_is_applied_once(app, fake_slack, fake_gitlab):
    import threading

    from triage.core.gitlab_hooks import parse_hook

    land(app, fake_slack)
    note = parse_hook(fake_gitlab.note_hook_payload(PROJECT, 1, "Both at once", "sam"))
    barrier = threading.Barrier(2)
    results: list[str] = []

    def deliver():
        barrier.wait()
        results.append(app.services.apply_gitlab_hook(event="Note Hook", hook=note, delivery_key="same-key"))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["applied: comment", "duplicate delivery: already applied"]
    assert len(events(app, "gitlab_comment")) == 1
