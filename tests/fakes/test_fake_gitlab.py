"""The fake GitLab behaves like GitLab where the app depends on it (checked with the real python-gitlab)."""

from __future__ import annotations

from datetime import UTC, datetime

import gitlab
import pytest
import requests

from tests.fakes.gitlab_api import FakeGitLab

TOKEN = "glpat-test"
PROJECT = "sa-triage-boards/amer-east"
ENC = "sa-triage-boards%2Famer-east"


@pytest.fixture
def fake():
    with FakeGitLab(token=TOKEN) as f:
        f.add_project(PROJECT, id=7)
        yield f


@pytest.fixture
def gl(fake):
    client = gitlab.Gitlab(fake.url, private_token=TOKEN)
    yield client
    client.session.close()


def api(fake, method, path, *, token=TOKEN, **kwargs):
    headers = {"PRIVATE-TOKEN": token} if token else {}
    return requests.request(method, f"{fake.url}/api/v4{path}", headers=headers, timeout=5, **kwargs)


# ---------------------------------------------------------------- auth and addressing
def test_missing_or_wrong_token_is_401(fake):
    for token in (None, "nope"):
        r = api(fake, "GET", f"/projects/{ENC}", token=token)
        assert r.status_code == 401
        assert r.json() == {"message": "401 Unauthorized"}
    with pytest.raises(gitlab.exceptions.GitlabAuthenticationError):
        gitlab.Gitlab(fake.url, private_token="wrong").projects.get(PROJECT)


def test_project_by_id_or_encoded_path_and_404(fake, gl):
    assert gl.projects.get(7).path_with_namespace == PROJECT
    assert api(fake, "GET", f"/projects/{ENC}").json()["id"] == 7
    r = api(fake, "GET", "/projects/nobody%2Fnothing")
    assert r.status_code == 404
    assert r.json() == {"message": "404 Project Not Found"}


def test_current_user(fake, gl):
    gl.auth()
    assert gl.user.username == "triage-bot"


# ---------------------------------------------------------------- issues
def test_create_issue_shape_and_auto_created_labels(fake, gl):
    issue = gl.projects.get(PROJECT, lazy=True).issues.create(
        {"title": "Help", "description": "text", "labels": "SA Triaged,Expedite", "due_date": "2031-02-03"}
    )
    assert issue.iid == 1
    assert issue.labels == ["Expedite", "SA Triaged"]
    assert issue.due_date == "2031-02-03"
    assert issue.state == "opened"
    assert issue.web_url.endswith(f"/{PROJECT}/-/issues/1")
    for key in ("id", "project_id", "assignees", "assignee", "created_at", "updated_at", "closed_at", "author"):
        assert key in issue.attributes
    assert {lab["name"] for lab in fake.labels(PROJECT)} == {"Expedite", "SA Triaged"}

    # a JSON array works too, and every item is split on commas like GitLab's CommaSeparatedToArray
    r = api(fake, "POST", f"/projects/{ENC}/issues", json={"title": "x", "labels": ["A", "B,C"]})
    assert r.status_code == 201
    assert r.json()["labels"] == ["A", "B", "C"]


def test_create_issue_validation(fake):
    r = api(fake, "POST", f"/projects/{ENC}/issues", json={"description": "no title"})
    assert (r.status_code, r.json()) == (400, {"error": "title is missing"})
    r = api(fake, "POST", f"/projects/{ENC}/issues", json={"title": "  "})
    assert (r.status_code, r.json()) == (400, {"message": {"title": ["can't be blank"]}})
    r = api(fake, "POST", f"/projects/{ENC}/issues", json={"title": "t", "due_date": "31/12/2030"})
    assert (r.status_code, r.json()) == (400, {"error": "due_date is invalid"})
    assert fake.issues(PROJECT) == []


def test_update_issue_labels_assignees_state(fake, gl):
    alice = fake.add_user("alice")
    issues = gl.projects.get(PROJECT, lazy=True).issues
    issues.create({"title": "t", "labels": "SA Triaged"})
    before = fake.issue(PROJECT, 1)["updated_at"]
    data = issues.update(1, {"add_labels": "SA Doing", "remove_labels": "SA Triaged", "assignee_ids": [alice["id"]]})
    assert data["labels"] == ["SA Doing"]
    assert [a["username"] for a in data["assignees"]] == ["alice"]
    assert data["updated_at"] > before
    data = issues.update(1, {"assignee_ids": [0], "state_event": "close"})
    assert data["assignees"] == [] and data["state"] == "closed" and data["closed_at"]
    data = issues.update(1, {"assignee_ids": [alice["id"]], "state_event": "reopen"})
    data = issues.update(1, {"assignee_ids": []})
    assert data["assignees"] == [] and data["state"] == "opened"
    system = [n["body"] for n in fake.notes(PROJECT, 1, include_system=True) if n["system"]]
    assert "closed" in system and "reopened" in system
    assert fake.notes(PROJECT, 1) == []  # no comments, only system notes

    r = api(fake, "PUT", f"/projects/{ENC}/issues/1", json={})
    assert r.status_code == 400
    r = api(fake, "PUT", f"/projects/{ENC}/issues/99", json={"title": "x"})
    assert (r.status_code, r.json()) == (404, {"message": "404 Not found"})


def test_list_filters(fake, gl):
    t0 = datetime(2030, 1, 1, 9, 0, tzinfo=UTC)
    fake.set_time(t0)
    issues = gl.projects.get(PROJECT, lazy=True).issues
    issues.create({"title": "One", "description": "<!-- triage-request: r-001 -->", "labels": "A"})
    fake.advance(hours=1)
    issues.create({"title": "Two", "description": "<!-- triage-request: r-002 -->", "labels": "A,B"})
    fake.advance(hours=1)
    issues.create({"title": "Three r-001", "description": "nothing"})
    issues.update(1, {"state_event": "close"})

    def iids(**kw):
        return [i.iid for i in issues.list(get_all=True, **kw)]

    assert iids() == [3, 2, 1]  # created_at desc by default, state=all
    assert iids(state="opened") == [3, 2]
    assert iids(labels="A,B") == [2]
    assert iids(labels="None") == [3]
    assert iids(search="r-001") == [3, 1]
    assert iids(search="R-001", **{"in": "description"}) == [1]
    assert iids(search="triage-request: r-002", **{"in": "description"}) == [2]
    assert iids(iids=[1, 3], order_by="created_at", sort="asc") == [1, 3]
    after = datetime(2030, 1, 1, 10, 30, tzinfo=UTC).isoformat()
    assert iids(updated_after=after, order_by="updated_at", sort="asc") == [3, 1]


def test_pagination_headers_and_python_gitlab_iteration(fake, gl):
    for n in range(45):
        fake.add_issue(PROJECT, title=f"issue {n}")
    r = api(fake, "GET", f"/projects/{ENC}/issues", params={"state": "all"})
    assert len(r.json()) == 20
    assert r.headers["X-Page"] == "1" and r.headers["X-Per-Page"] == "20"
    assert r.headers["X-Next-Page"] == "2" and r.headers["X-Total"] == "45" and r.headers["X-Total-Pages"] == "3"
    assert "state=all" in r.links["next"]["url"] and "page=2" in r.links["next"]["url"]
    r = api(fake, "GET", f"/projects/{ENC}/issues", params={"page": 3})
    assert len(r.json()) == 5 and r.headers["X-Next-Page"] == "" and "next" not in r.links
    r = api(fake, "GET", f"/projects/{ENC}/issues", params={"per_page": 500})
    assert r.headers["X-Per-Page"] == "100" and len(r.json()) == 45

    issues = gl.projects.get(PROJECT, lazy=True).issues
    assert len(issues.list(get_all=True, per_page=10)) == 45
    fake.reset_calls()
    assert len(list(issues.list(iterator=True, per_page=20))) == 45
    assert len(fake.calls_matching("GET", r"/issues$")) == 3


# ---------------------------------------------------------------- quick actions
def test_quick_actions_in_description_are_executed_and_stripped(fake, gl):
    fake.add_user("mallory")
    fake.add_label(PROJECT, "Security Audit")
    fake.add_project("elsewhere/other")
    desc = "\n".join(
        [
            "Customer says:",
            "/close",
            "  /assign @mallory",
            '/label ~"Security Audit"',
            "/due 2031-01-01",
            "/title Pwned",
            "/confidential",
            "/spend 1h",
            "/unknowncommand stays",
            "```",
            "/reopen inside a fence stays",
            "```",
            "path /close in the middle stays",
            "please fix",
        ]
    )
    issue = gl.projects.get(PROJECT, lazy=True).issues.create({"title": "Real title", "description": desc})
    assert issue.state == "closed"
    assert issue.title == "Pwned"
    assert [a["username"] for a in issue.assignees] == ["mallory"]
    assert issue.labels == ["Security Audit"]
    assert issue.due_date == "2031-01-01"
    assert issue.confidential is True
    assert issue.attributes["time_stats"]["total_time_spent"] == 3600
    assert "/close" not in issue.description.splitlines()
    assert "/unknowncommand stays" in issue.description
    assert "/reopen inside a fence stays" in issue.description
    assert "path /close in the middle stays" in issue.description
    names = [q.name for q in fake.executed_quick_actions]
    assert names == ["close", "assign", "label", "due", "title", "confidential", "spend"]
    assert {q.source for q in fake.executed_quick_actions} == {"description"}


def test_quick_actions_in_notes_and_updates(fake, gl):
    fake.add_project("elsewhere/other")
    issues = gl.projects.get(PROJECT, lazy=True).issues
    issues.create({"title": "t"})
    note = issues.get(1, lazy=True).notes.create({"body": "Thanks!\n/lock\n/award :thumbsup:"})
    assert note.body == "Thanks!"
    assert fake.issue(PROJECT, 1)["discussion_locked"] is True
    assert fake.issue(PROJECT, 1)["upvotes"] == 1

    r = api(fake, "POST", f"/projects/{ENC}/issues/1/notes", json={"body": "/move elsewhere/other"})
    assert r.status_code == 202 and "id" not in r.json()
    assert fake.issue(PROJECT, 1)["state"] == "closed"
    assert [i["title"] for i in fake.issues("elsewhere/other")] == ["t"]
    assert [n["body"] for n in fake.notes(PROJECT, 1)] == ["Thanks!"]

    issues.update(1, {"description": "edited\n/reopen"})
    assert fake.issue(PROJECT, 1)["state"] == "opened"
    assert fake.issue(PROJECT, 1)["description"] == "edited"
    assert [q.name for q in fake.executed_quick_actions] == ["lock", "award", "move", "reopen"]

    r = api(fake, "POST", f"/projects/{ENC}/issues/1/notes", json={})
    assert (r.status_code, r.json()) == (400, {"error": "body is missing"})


# ---------------------------------------------------------------- labels, boards, users, hooks
def test_labels_create_conflict_and_validation(fake, gl):
    labels = gl.projects.get(PROJECT, lazy=True).labels
    created = labels.create({"name": "SA Doing", "color": "#1F75CB", "description": "work"})
    assert created.name == "SA Doing" and created.is_project_label is True
    r = api(fake, "POST", f"/projects/{ENC}/labels", json={"name": "SA Doing", "color": "#1F75CB"})
    assert (r.status_code, r.json()) == (409, {"message": "Label already exists"})
    assert api(fake, "POST", f"/projects/{ENC}/labels", json={"name": "x"}).json() == {"error": "color is missing"}
    r = api(fake, "POST", f"/projects/{ENC}/labels", json={"name": "a,b", "color": "#000000"})
    assert r.status_code == 400
    assert labels.get("SA Doing").description == "work"
    assert api(fake, "GET", f"/projects/{ENC}/labels/SA%20Doing").json()["id"] == created.id
    assert api(fake, "GET", f"/projects/{ENC}/labels/none").status_code == 404


def test_boards_and_lists(fake, gl):
    proj = gl.projects.get(PROJECT, lazy=True)
    label = proj.labels.create({"name": "SA Doing", "color": "#1F75CB"})
    assert proj.boards.list(get_all=True) == []
    board = proj.boards.create({"name": "SA triage"})
    assert board.attributes["lists"] == []
    lst = board.lists.create({"label_id": label.id})
    assert lst.label["name"] == "SA Doing"
    r = api(fake, "POST", f"/projects/{ENC}/boards/{board.id}/lists", json={"label_id": label.id})
    assert r.status_code == 400
    r = api(fake, "POST", f"/projects/{ENC}/boards/{board.id}/lists", json={"label_id": 999})
    assert r.status_code == 400
    assert [x["label"]["name"] for x in fake.boards(PROJECT)[0]["lists"]] == ["SA Doing"]


def test_user_search_matches_public_email_exactly_not_private_email(fake, gl):
    fake.add_user("alice", public_email="Alice@Example.com", email="alice@corp.example")
    fake.add_user("bob", email="bob@corp.example")
    fake.add_user("jon", public_email="jon@example.com")
    assert [u.username for u in gl.users.list(search="alice@example.com", get_all=True)] == ["alice"]
    assert gl.users.list(search="bob@corp.example", get_all=True) == []
    assert gl.users.list(search="on@example.com", get_all=True) == []
    listed = gl.users.list(search="alice@example.com", get_all=True)[0]
    assert "email" not in listed.attributes and "public_email" not in listed.attributes
    assert gl.users.get(listed.id).public_email == "Alice@Example.com"
    assert [u.username for u in gl.users.list(username="BOB", get_all=True)] == ["bob"]
    assert [u.username for u in gl.users.list(search="ali", get_all=True)] == ["alice"]
    assert api(fake, "GET", "/users/999").json() == {"message": "404 User Not Found"}


def test_admin_token_also_matches_private_email():
    with FakeGitLab(admin=True) as f:
        f.add_user("bob", email="bob@corp.example")
        r = api(f, "GET", "/users", token=f.token, params={"search": "BOB@corp.example"})
        assert [(u["username"], u["email"]) for u in r.json()] == [("bob", "bob@corp.example")]


def test_hooks(fake, gl):
    fake.add_hook(PROJECT, "https://triage.example/gitlab/webhook", disabled="temporarily")
    hook = gl.projects.get(PROJECT, lazy=True).hooks.create(
        {"url": "https://other.example/hook", "issues_events": True, "token": "s3cret"}
    )
    assert hook.issues_events is True and hook.note_events is False and hook.alert_status == "executable"
    assert "token" not in hook.attributes
    hooks = fake.hooks(PROJECT)
    assert hooks[0]["alert_status"] == "temporarily_disabled" and hooks[0]["disabled_until"]
    assert hooks[0]["enable_ssl_verification"] is True


# ---------------------------------------------------------------- failure injection
def test_429_carries_retry_after_and_ratelimit_headers(fake):
    fake.fail("POST", r"/issues$", status=429, retry_after=17, times=2)
    for _ in range(2):
        r = api(fake, "POST", f"/projects/{ENC}/issues", json={"title": "t"})
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "17"
        assert r.headers["RateLimit-Remaining"] == "0" and "RateLimit-Reset" in r.headers
    assert fake.issues(PROJECT) == []
    assert api(fake, "POST", f"/projects/{ENC}/issues", json={"title": "t"}).status_code == 201
    assert [c.status for c in fake.calls_matching("POST", r"/issues$")] == [429, 429, 201]


def test_python_gitlab_sleeps_on_429_by_default(fake, gl, monkeypatch):
    """Why the tracker switches it off: by default python-gitlab sleeps Retry-After and tries again."""
    slept = []
    monkeypatch.setattr("gitlab.utils.time.sleep", slept.append)
    fake.fail("GET", r"/projects/\d+$|amer-east$", status=429, retry_after=30)
    assert gl.projects.get(PROJECT).id == 7
    assert slept == [30]


def test_down_and_drop_after_commit(fake):
    fake.set_down(True)
    r = api(fake, "GET", f"/projects/{ENC}")
    assert r.status_code == 503 and "text/html" in r.headers["Content-Type"]
    fake.set_down(False)

    fake.drop_response_after_commit("POST", r"/issues$")
    with pytest.raises(requests.ConnectionError):
        api(fake, "POST", f"/projects/{ENC}/issues", json={"title": "lost answer"})
    assert [i["title"] for i in fake.issues(PROJECT)] == ["lost answer"]
    assert fake.calls[-1].status is None
    assert api(fake, "POST", f"/projects/{ENC}/issues", json={"title": "next"}).status_code == 201


# ---------------------------------------------------------------- webhook payloads
def test_edit_issue_as_user_returns_issue_hook_payload(fake):
    fake.add_user("sam", name="Sam SA")
    fake.add_issue(PROJECT, title="t", labels=["SA Triaged"])
    payload = fake.edit_issue_as_user(PROJECT, 1, labels=["SA Doing"], assignee_usernames=["sam"], by="sam")
    assert payload["object_kind"] == "issue" and payload["event_type"] == "issue"
    attrs = payload["object_attributes"]
    assert attrs["iid"] == 1 and attrs["action"] == "update" and attrs["state"] == "opened"
    assert [lab["title"] for lab in payload["labels"]] == ["SA Doing"]
    assert [lab["title"] for lab in payload["changes"]["labels"]["previous"]] == ["SA Triaged"]
    assert [lab["title"] for lab in payload["changes"]["labels"]["current"]] == ["SA Doing"]
    assert [a["username"] for a in payload["changes"]["assignees"]["current"]] == ["sam"]
    assert payload["user"]["username"] == "sam" and payload["user"]["email"] == "[REDACTED]"
    assert payload["project"]["path_with_namespace"] == PROJECT
    assert fake.issue(PROJECT, 1)["labels"] == ["SA Doing"]

    closed = fake.edit_issue_as_user(PROJECT, 1, state="closed", by="sam")
    assert closed["object_attributes"]["action"] == "close"
    assert closed["changes"]["state_id"] == {"previous": 1, "current": 2}


def test_note_hook_payload(fake):
    fake.add_user("sam")
    fake.add_issue(PROJECT, title="t")
    payload = fake.note_hook_payload(PROJECT, 1, "On it", "sam")
    assert payload["object_kind"] == "note"
    assert payload["object_attributes"]["note"] == "On it"
    assert payload["object_attributes"]["noteable_type"] == "Issue"
    assert payload["object_attributes"]["system"] is False
    assert payload["object_attributes"]["noteable_id"] == payload["issue"]["id"]
    assert payload["issue"]["iid"] == 1
    assert payload["object_attributes"]["created_at"].endswith(" UTC")
    assert [n["body"] for n in fake.notes(PROJECT, 1)] == ["On it"]
