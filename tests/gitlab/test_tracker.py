"""GitLabTracker against the fake GitLab, over HTTP, with the real python-gitlab client."""

from __future__ import annotations

import socket
import time
from datetime import UTC, date, datetime

import pytest

from tests.fakes.gitlab_api import FakeGitLab
from triage.core.errors import Rejected, RetryLater
from triage.gitlab_tracker import GitLabTracker, GitLabUser, IssueRef

TOKEN = "glpat-test"
PROJECT = "sa-triage-boards/amer-east"
MARKER = "<!-- triage-request: 0193f2c1-7d2e -->"
DUE = date(2031, 3, 4)


@pytest.fixture
def fake():
    with FakeGitLab(token=TOKEN) as f:
        f.add_project(PROJECT, id=7)
        yield f
        assert f.server_errors == []


@pytest.fixture
def tracker(fake):
    return GitLabTracker(fake.url, TOKEN, timeout=5)


def create(tracker, *, description=f"Customer: ACME\n\n{MARKER}", labels=("SA Activity",), **kw):
    return tracker.create_issue(
        PROJECT, title="ACME — demo", description=description, labels=list(labels), due_date=DUE, **kw
    )


# ---------------------------------------------------------------- issues
def test_create_issue_is_exactly_one_post_with_labels_and_due_date(fake, tracker):
    sam = fake.add_user("sam")
    ref = create(tracker, labels=["SA Activity", "Expedite"], assignee_ids=[sam["id"]])

    assert len(fake.calls) == 1
    call = fake.calls[0]
    assert call.method == "POST" and call.decoded_path == f"/api/v4/projects/{PROJECT}/issues"
    assert call.body["labels"] == "SA Activity,Expedite"
    assert call.body["due_date"] == "2031-03-04"
    assert call.body["assignee_ids"] == [sam["id"]]
    assert call.headers["PRIVATE-TOKEN"] == TOKEN
    assert ref == IssueRef(project=PROJECT, iid=1, id=fake.issue(PROJECT, 1)["id"], web_url=ref.web_url)
    assert ref.web_url.endswith(f"/{PROJECT}/-/issues/1")
    issue = fake.issue(PROJECT, 1)
    assert issue["labels"] == ["Expedite", "SA Activity"] and issue["due_date"] == "2031-03-04"
    assert [a["username"] for a in issue["assignees"]] == ["sam"]


def test_long_title_is_clipped_to_gitlabs_limit(fake, tracker):
    tracker.create_issue(PROJECT, title="x" * 400, description="d", labels=[], due_date=DUE)
    assert len(fake.issue(PROJECT, 1)["title"]) == 255


def test_label_with_comma_is_refused_before_any_call(fake, tracker):
    with pytest.raises(Rejected):
        create(tracker, labels=["SA Doing,Expedite"])
    with pytest.raises(Rejected):
        tracker.update_issue(PROJECT, 1, add_labels=["a,b"])
    assert fake.calls == []


def test_dropped_answer_then_find_by_marker_means_no_second_issue(fake, tracker):
    fake.drop_response_after_commit("POST", r"/issues$")
    with pytest.raises(RetryLater):
        create(tracker)
    assert len(fake.calls_matching("POST", r"/issues$")) == 1  # no silent re-send by any layer

    # the outbox's retry: look first, create only if missing
    ref = tracker.find_issue_by_marker(PROJECT, MARKER) or create(tracker)
    assert ref.iid == 1
    assert len(fake.issues(PROJECT)) == 1
    assert len(fake.calls_matching("POST", r"/issues$")) == 1
    search = fake.calls_matching("GET", r"/issues$")[-1]
    assert search.query["in"] == ["description"] and "triage-request" in search.query["search"][0]


def test_timeout_after_commit_is_retry_later(fake):
    fake.set_delay(1.0)
    slow = GitLabTracker(fake.url, TOKEN, timeout=0.2)
    with pytest.raises(RetryLater):
        create(slow)
    fake.set_delay(0)
    assert len(fake.calls) == 1
    assert GitLabTracker(fake.url, TOKEN).find_issue_by_marker(PROJECT, MARKER).iid == 1


def test_find_issue_by_marker_is_exact_and_oldest_first(fake, tracker):
    fake.add_issue(PROJECT, title="a", description="<!-- triage-request: 12 -->")
    fake.add_issue(PROJECT, title="b", description="x <!-- triage-request: 123 --> y")
    fake.add_issue(PROJECT, title="c", description="<!-- triage-request: 123 -->")
    fake.add_issue(PROJECT, title="d", description="quoted: triage-request: 999")
    assert tracker.find_issue_by_marker(PROJECT, "<!-- triage-request: 123 -->").iid == 2
    assert tracker.find_issue_by_marker(PROJECT, "<!-- triage-request: 12 -->").iid == 1
    assert tracker.find_issue_by_marker(PROJECT, "<!-- triage-request: 999 -->") is None


def test_find_issue_by_marker_scans_recent_issues_when_search_misses(fake, tracker):
    # GitLab's search drops words under 3 characters and, with none left, compares the whole column, so a
    # marker made of short words is never found by search; created_after lets the tracker scan instead.
    fake.set_time(datetime(2030, 5, 1, 12, 0, tzinfo=UTC))
    fake.add_issue(PROJECT, title="old", description="more\n<!-- r: 8 -->", created_at=datetime(2030, 1, 1, tzinfo=UTC))
    fake.add_issue(PROJECT, title="other", description="more\n<!-- r: 9 -->")
    fake.add_issue(PROJECT, title="new", description="more\n<!-- r: 8 -->")
    assert tracker.find_issue_by_marker(PROJECT, "<!-- r: 8 -->") is None
    since = datetime(2030, 4, 30, tzinfo=UTC)
    assert tracker.find_issue_by_marker(PROJECT, "<!-- r: 8 -->", created_after=since).iid == 3
    assert tracker.find_issue_by_marker(PROJECT, "<!-- r: 10 -->", created_after=since) is None


def test_update_issue_is_one_put(fake, tracker):
    sam = fake.add_user("sam")
    create(tracker, labels=["SA Activity", "SA Triaged"])
    fake.reset_calls()
    state = tracker.update_issue(
        PROJECT, 1, add_labels=["SA Doing"], remove_labels=["SA Triaged"], assignee_ids=[sam["id"]]
    )
    assert [(c.method, c.decoded_path) for c in fake.calls] == [("PUT", f"/api/v4/projects/{PROJECT}/issues/1")]
    body = fake.calls[0].body
    assert body == {"add_labels": "SA Doing", "remove_labels": "SA Triaged", "assignee_ids": [sam["id"]]}
    assert state.labels == ("SA Activity", "SA Doing")
    assert state.assignee_usernames == ("sam",) and state.assignee_ids == (sam["id"],)
    assert state.state == "opened" and state.due_date == DUE
    assert state.updated_at.tzinfo is not None
    assert MARKER in state.description

    state = tracker.update_issue(PROJECT, 1, assignee_ids=[], state_event="close", due_date=date(2031, 4, 1))
    assert fake.calls[-1].body["assignee_ids"] == [0]
    assert state.assignee_ids == () and state.state == "closed" and state.due_date == date(2031, 4, 1)
    assert len(fake.calls) == 2
    assert tracker.get_issue(PROJECT, 1) == state


def test_add_note(fake, tracker):
    create(tracker)
    note_id = tracker.add_note(PROJECT, 1, "Claimed by @sam")
    assert [n["id"] for n in fake.notes(PROJECT, 1)] == [note_id]
    with pytest.raises(Rejected, match="quick actions"):
        tracker.add_note(PROJECT, 1, "/close")  # GitLab: 202, runs it, makes no note


def test_issues_updated_after_is_bounded_and_ordered(fake):
    tracker = GitLabTracker(fake.url, TOKEN, per_page=2)
    fake.set_time(datetime(2030, 1, 1, tzinfo=UTC))
    for n in range(5):
        fake.add_issue(PROJECT, title=f"i{n}")
        fake.advance(minutes=10)
    since = fake.now()
    fake.edit_issue_as_user(PROJECT, 4, labels=["SA Doing"])
    fake.advance(minutes=1)
    fake.edit_issue_as_user(PROJECT, 2, state="closed")
    fake.advance(minutes=1)
    fake.edit_issue_as_user(PROJECT, 5, labels=["SA Waiting"])
    fake.advance(minutes=1)
    fake.edit_issue_as_user(PROJECT, 1, labels=["SA Waiting"])

    got = tracker.issues_updated_after(PROJECT, since, limit=3)
    assert [s.iid for s in got] == [4, 2, 5]
    assert got[1].state == "closed"
    assert [s.iid for s in tracker.issues_updated_after(PROJECT, since, limit=10)] == [4, 2, 5, 1]
    last = fake.calls_matching("GET", r"/issues$")[-1]
    assert last.query["state"] == ["all"] and last.query["order_by"] == ["updated_at"]
    assert last.query["sort"] == ["asc"]


# ---------------------------------------------------------------- errors
def test_429_is_retry_later_with_retry_after_and_no_internal_retry(fake, tracker):
    fake.fail("POST", r"/issues$", status=429, retry_after=17)
    started = time.monotonic()
    with pytest.raises(RetryLater) as exc:
        create(tracker)
    assert time.monotonic() - started < 2
    assert exc.value.retry_after == 17
    assert "429" in str(exc.value)
    assert len(fake.calls) == 1
    assert fake.issues(PROJECT) == []


def test_429_on_a_later_page_is_retry_later(fake):
    tracker = GitLabTracker(fake.url, TOKEN, per_page=1)
    for n in range(3):
        fake.add_issue(PROJECT, title=f"i{n}")
    fake.fail("GET", r"/issues$", status=429, retry_after=5)
    with pytest.raises(RetryLater) as exc:
        tracker.issues_updated_after(PROJECT, datetime(2000, 1, 1, tzinfo=UTC), limit=3)
    assert exc.value.retry_after == 5


def test_down_is_retry_later_quickly_without_internal_retries(fake, tracker):
    fake.set_down(True)
    started = time.monotonic()
    with pytest.raises(RetryLater) as exc:
        create(tracker)
    assert time.monotonic() - started < 2
    assert len(fake.calls) == 1
    assert "503" in str(exc.value) and "<html" not in str(exc.value).lower()
    assert exc.value.retry_after is None


def test_5xx_with_retry_after(fake, tracker):
    fake.fail("PUT", r"/issues/1$", status=502, retry_after=30)
    with pytest.raises(RetryLater) as exc:
        tracker.update_issue(PROJECT, 1, add_labels=["SA Doing"])
    assert exc.value.retry_after == 30
    assert len(fake.calls) == 1


def test_connection_refused_is_retry_later():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tracker = GitLabTracker(f"http://127.0.0.1:{port}", TOKEN, timeout=2)
    with pytest.raises(RetryLater):
        tracker.whoami()


def test_404_401_400_are_rejected(fake, tracker):
    with pytest.raises(Rejected, match=r"404.*Project Not Found"):
        tracker.create_issue("nobody/nothing", title="t", description="d", labels=[], due_date=DUE)
    with pytest.raises(Rejected, match="404"):
        tracker.get_issue(PROJECT, 42)
    with pytest.raises(Rejected, match="title can't be blank"):
        tracker.create_issue(PROJECT, title=" ", description="d", labels=[], due_date=DUE)
    bad = GitLabTracker(fake.url, "glpat-wrong")
    with pytest.raises(Rejected, match="401") as exc:
        bad.whoami()
    assert "glpat-wrong" not in str(exc.value) and "glpat-wrong" not in repr(bad)
    for code in (403, 409, 422):
        fake.fail("GET", r"/user$", status=code)
        with pytest.raises(Rejected, match=str(code)):
            tracker.whoami()


# ---------------------------------------------------------------- users, checks
def test_users_by_email(fake, tracker):
    alice = fake.add_user("alice", name="Alice SA", public_email="Alice@Example.com", email="a@corp.example")
    fake.add_user("bob", email="bob@corp.example")  # no public email: GitLab can't find him by email
    fake.add_user("alice2", public_email="alice@example.co")
    assert tracker.users_by_email("alice@example.com") == [GitLabUser(alice["id"], "alice", "Alice SA")]
    assert tracker.users_by_email("ALICE@EXAMPLE.COM") == [GitLabUser(alice["id"], "alice", "Alice SA")]
    assert tracker.users_by_email("bob@corp.example") == []
    assert tracker.users_by_email("  ") == []


def test_users_by_email_with_admin_token_uses_the_listed_email():
    with FakeGitLab(token=TOKEN, admin=True) as f:
        bob = f.add_user("bob", email="bob@corp.example")
        tracker = GitLabTracker(f.url, TOKEN)
        assert [u.id for u in tracker.users_by_email("bob@corp.example")] == [bob["id"]]
        assert not f.calls_matching("GET", r"/users/\d+$")  # the list showed the email already


def test_user_by_username_whoami_project_exists(fake, tracker):
    sam = fake.add_user("sam.sa", name="Sam")
    assert tracker.user_by_username("@Sam.SA") == GitLabUser(sam["id"], "sam.sa", "Sam")
    assert tracker.user_by_username("nobody") is None
    assert tracker.whoami() == "triage-bot"
    assert tracker.project_exists(PROJECT) is True
    assert tracker.project_exists("7") is True
    assert tracker.project_exists("nobody/nothing") is False
    fake.set_down(True)
    with pytest.raises(RetryLater):
        tracker.project_exists(PROJECT)
