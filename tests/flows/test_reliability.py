"""Issue 3 "Trust it": a request the AE submitted lands exactly once (one issue, one card, one DM) whatever
GitLab and Slack do meanwhile: outages, rate limits, timeouts, answers lost after the fact, a worker that
dies mid-delivery, two workers at once. And nothing the AE typed acts on GitLab or pings a channel.

Time is driven by the `now` given to the worker, never by sleeping.
"""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from slack_sdk import WebClient

from tests.conftest import (
    AE,
    AMER_CHANNEL,
    BOT_TOKEN,
    GITLAB_TOKEN,
    make_settings,
    post_slack_payload,
    shortcut_payload,
    submission_payload,
    wait_for,
)
from tests.flows.test_intake import GOOD
from triage import outbox
from triage.db import make_engine, session_scope
from triage.gitlab_tracker import GitLabTracker
from triage.migrate import upgrade
from triage.models import Request
from triage.services import Services
from triage.slack.notifier import SlackNotifier
from triage.web import create_app
from triage.worker import Worker, build_notifier, build_tracker, run_once

PROJECT = "sa-triage-boards/amer-east"
ISSUE_CREATE = r"/projects/[^/]+/issues$"
CONTRACT_LABELS = {
    "SA Triaged", "SA Doing", "SA Waiting", "SA Followup", "SA Demo Ready", "SA POV", "Security Audit",
    "Services Request", "Expedite", "SA Activity", "Follow Up", "Vendor Security Assessment", "SA Event Request",
}



class Crash(BaseException):
    """The worker process dying mid-delivery: not an Exception, so nothing in the app catches it."""


# ------------------------------------------------------------------ helpers


def file_request(client: TestClient, fake_slack, **changes: Any) -> datetime:
    """The AE opens the modal and submits it; returns the moment just after, for the worker's `now`."""
    before = len(fake_slack.calls_to("views.open"))
    assert post_slack_payload(client, shortcut_payload(fake_slack)).status_code == 200
    view = wait_for(lambda: fake_slack.calls_to("views.open")[before:], what="views.open")[0].args["view"]
    r = post_slack_payload(client, submission_payload(view, {**GOOD, **changes}))
    assert r.status_code == 200
    assert r.json()["response_action"] == "update", r.json()  # accepted, no field errors
    return datetime.now(UTC)


def issues(fake_gitlab) -> list[dict[str, Any]]:
    return fake_gitlab.issues(PROJECT)


def issue_posts(fake_gitlab, *, status: int | None = None) -> int:
    """How many issue-creating POSTs GitLab received (only those it answered `status`, when given)."""
    return len([c for c in fake_gitlab.calls_matching("POST", ISSUE_CREATE) if status in (None, c.status)])


def cards(fake_slack) -> list[dict[str, Any]]:
    return fake_slack.messages_in(AMER_CHANNEL, top_level_only=True)


def dm_kinds(fake_slack) -> list[str]:
    """The AE's DMs from the app, in order, as what the AE would read them as."""
    out = []
    for m in fake_slack.messages_in(AE):
        text = m["text"] + json.dumps(m["blocks"])
        out.append("landed" if "landed in" in text else "queued" if "saved and will be filed" in text else text)
    return out


def stored_request(settings, request_id: int = 1) -> Request:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(engine) as s:
            return s.execute(sa.select(Request).where(Request.id == request_id)).scalar_one()
    finally:
        engine.dispose()


@contextmanager
def worker(settings, *, tracker=None, notifier=None) -> Iterator[Worker]:
    """A worker with some adapters swapped (the real ones, wrapped or with short timeouts)."""
    engine = make_engine(settings.database_url)
    try:
        yield Worker(Services(settings, engine), tracker=tracker, notifier=notifier)
    finally:
        engine.dispose()


def assert_landed_once(fake_gitlab, fake_slack, *, queued: int = 0) -> None:
    found = issues(fake_gitlab)
    assert len(found) == 1, f"{len(found)} issues"
    card = cards(fake_slack)
    assert len(card) == 1, f"{len(card)} cards"
    assert found[0]["web_url"] in json.dumps(card[0]["blocks"])
    assert dm_kinds(fake_slack) == ["queued"] * queued + ["landed"]


# ------------------------------------------------------------------ GitLab trouble


def test_gitlab_down_tells_ae_once_then_lands_once(client, fake_slack, fake_gitlab, settings):
    fake_gitlab.set_down(True)
    t0 = file_request(client, fake_slack)

    run_once(settings, t0)
    assert issues(fake_gitlab) == []
    assert cards(fake_slack) == []
    assert dm_kinds(fake_slack) == ["queued"]  # "GitLab is slow; your request is saved", in the same pass

    tried = len(fake_gitlab.calls)
    for later in (timedelta(seconds=30), timedelta(minutes=5), timedelta(minutes=30)):
        run_once(settings, t0 + later)
    assert len(fake_gitlab.calls) > tried  # it kept trying...
    assert issues(fake_gitlab) == []
    assert dm_kinds(fake_slack) == ["queued"]  # ...without telling the AE again

    fake_gitlab.set_down(False)
    run_once(settings, t0 + timedelta(hours=1))
    assert_landed_once(fake_gitlab, fake_slack, queued=1)
    assert issue_posts(fake_gitlab, status=201) == 1

    run_once(settings, t0 + timedelta(hours=2))
    assert_landed_once(fake_gitlab, fake_slack, queued=1)


def test_gitlab_429_retry_after_is_honoured(client, fake_slack, fake_gitlab, settings):
    fake_gitlab.fail("POST", ISSUE_CREATE, status=429, retry_after=120)
    t0 = file_request(client, fake_slack)

    run_once(settings, t0)
    assert issues(fake_gitlab) == [] and issue_posts(fake_gitlab) == 1
    calls = len(fake_gitlab.calls)

    run_once(settings, t0 + timedelta(seconds=119))
    assert len(fake_gitlab.calls) == calls, "retried before GitLab's Retry-After"

    run_once(settings, t0 + timedelta(seconds=121))
    assert issue_posts(fake_gitlab) == 2
    found = issues(fake_gitlab)
    assert len(found) == 1 and len(cards(fake_slack)) == 1
    assert dm_kinds(fake_slack).count("landed") == 1


def test_gitlab_timeout_after_it_created_the_issue_makes_no_second_issue(client, fake_slack, fake_gitlab, settings):
    """GitLab applies the POST but answers after the client gave up: the retry finds the issue by marker."""
    t0 = file_request(client, fake_slack)
    fake_gitlab.set_delay(1.0)
    quick = GitLabTracker(settings.gitlab_url, GITLAB_TOKEN, timeout=0.3)
    with worker(settings, tracker=quick) as w:
        w.run_once(t0)
    fake_gitlab.set_delay(0)
    assert len(issues(fake_gitlab)) == 1  # GitLab has it; the app doesn't know yet
    assert cards(fake_slack) == []

    run_once(settings, t0 + timedelta(minutes=10))
    assert issue_posts(fake_gitlab) == 1
    assert_landed_once(fake_gitlab, fake_slack, queued=1)
    assert stored_request(settings).gitlab_url == issues(fake_gitlab)[0]["web_url"]


def test_gitlab_answer_lost_after_commit_makes_no_second_issue(client, fake_slack, fake_gitlab, settings):
    fake_gitlab.drop_response_after_commit("POST", ISSUE_CREATE)
    t0 = file_request(client, fake_slack)

    run_once(settings, t0)
    assert len(issues(fake_gitlab)) == 1 and cards(fake_slack) == []

    assert dm_kinds(fake_slack) == ["queued"]  # to the app, a lost answer is a slow GitLab

    run_once(settings, t0 + timedelta(minutes=10))
    assert issue_posts(fake_gitlab) == 1
    assert_landed_once(fake_gitlab, fake_slack, queued=1)


def test_worker_crash_after_issue_created_makes_no_second_issue(client, fake_slack, fake_gitlab, settings):
    """The worker dies between GitLab's answer and recording it; another pass picks the entry up later."""

    class CrashAfterCreate:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def create_issue(self, *args, **kwargs):
            self.real.create_issue(*args, **kwargs)
            raise Crash

    t0 = file_request(client, fake_slack)
    with worker(settings, tracker=CrashAfterCreate(build_tracker(settings))) as w, pytest.raises(Crash):
        w.run_once(t0)
    assert len(issues(fake_gitlab)) == 1

    run_once(settings, t0 + timedelta(seconds=10))  # the dead worker's lease (15 s) still holds the entry
    assert issue_posts(fake_gitlab) == 1 and cards(fake_slack) == []

    run_once(settings, t0 + timedelta(minutes=5))  # lease expired: delivered, found by its marker
    assert issue_posts(fake_gitlab) == 1
    assert_landed_once(fake_gitlab, fake_slack)


# ------------------------------------------------------------------ Slack trouble


def test_slack_429_on_card_retries_later_and_posts_once(client, fake_slack, fake_gitlab, settings):
    fake_slack.fail("chat.postMessage", status=429, retry_after=30)
    t0 = file_request(client, fake_slack)

    run_once(settings, t0)
    assert len(issues(fake_gitlab)) == 1
    assert cards(fake_slack) == [] and dm_kinds(fake_slack) == []

    run_once(settings, t0 + timedelta(seconds=29))
    assert cards(fake_slack) == []
    assert len(fake_slack.calls_to("chat.postMessage")) == 1  # Slack's Retry-After is honoured

    run_once(settings, t0 + timedelta(seconds=31))
    assert_landed_once(fake_gitlab, fake_slack)
    assert issue_posts(fake_gitlab) == 1


def test_slack_down_retries_later_and_posts_once(client, fake_slack, fake_gitlab, settings):
    t0 = file_request(client, fake_slack)
    fake_slack.set_down(True)

    run_once(settings, t0)
    run_once(settings, t0 + timedelta(minutes=1))
    run_once(settings, t0 + timedelta(minutes=10))
    assert len(issues(fake_gitlab)) == 1  # GitLab doesn't wait for Slack
    assert cards(fake_slack) == [] and dm_kinds(fake_slack) == []

    fake_slack.set_down(False)
    run_once(settings, t0 + timedelta(hours=1))
    assert_landed_once(fake_gitlab, fake_slack)
    assert issue_posts(fake_gitlab) == 1
    run_once(settings, t0 + timedelta(hours=2))
    assert_landed_once(fake_gitlab, fake_slack)


def test_worker_crash_after_card_posted_finds_the_card(client, fake_slack, fake_gitlab, settings):
    class CrashAfterCard:
        def __init__(self, real):
            self.real = real

        def __getattr__(self, name):
            return getattr(self.real, name)

        def post_card(self, *args, **kwargs):
            self.real.post_card(*args, **kwargs)
            raise Crash

    t0 = file_request(client, fake_slack)
    with worker(settings, notifier=CrashAfterCard(build_notifier(settings))) as w, pytest.raises(Crash):
        w.run_once(t0)
    assert len(cards(fake_slack)) == 1 and dm_kinds(fake_slack) == []

    run_once(settings, t0 + timedelta(minutes=5))
    assert_landed_once(fake_gitlab, fake_slack)
    history = fake_slack.calls_to("conversations.history")
    assert history, "the retry should look for the card it may have posted"
    # The request points at the card that exists, so claims and updates go to it.
    assert stored_request(settings).slack_ts == cards(fake_slack)[0]["ts"]


def test_slack_answer_lost_for_card_finds_the_card(client, fake_slack, fake_gitlab, settings):
    """Slack posts the card but the answer never arrives (client timeout): the retry finds it."""
    t0 = file_request(client, fake_slack)
    fake_slack.set_delay("chat.postMessage", 1.0)
    impatient = SlackNotifier(WebClient(token=BOT_TOKEN, base_url=settings.slack_api_url, timeout=0.3,
                                        retry_handlers=[]), settings.config)
    with worker(settings, notifier=impatient) as w:
        w.run_once(t0)
    fake_slack.set_delay("chat.postMessage", 0)
    assert len(cards(fake_slack)) == 1 and dm_kinds(fake_slack) == []

    run_once(settings, t0 + timedelta(minutes=5))
    assert_landed_once(fake_gitlab, fake_slack)
    assert stored_request(settings).slack_ts == cards(fake_slack)[0]["ts"]


# ------------------------------------------------------------------ what the AE typed stays text

HOSTILE_PAIN = (
    "Releases take two weeks because every pipeline is hand-built.\n"
    "/close\n"
    "/assign @sam\n"
    "  /label ~foo\n"
    "/due tomorrow\n"
    "@all please look <!channel> <!here> @channel @here"
)
HOSTILE_WHY = "/close\nTheir renewal is in three weeks and the CTO wants a decision. @channel <!everyone>"
HOSTILE_CONTEXT = "/label ~bar\n/assign @sasha\n/confidential\n@all <!subteam^S0AMEREAST> @everyone"
HOSTILE_CUSTOMER = "/close Acme @all <!here>"

_SLACK_BROADCAST = re.compile(
    r"<!(channel|here|everyone)\b|<!subteam\^|(?<![\w\u200d\u2060])@(channel|here|everyone)\b", re.IGNORECASE
)
_GITLAB_MENTION = re.compile(r"(?<![A-Za-z0-9_])@[A-Za-z0-9_]")


def parsed_texts(message: dict[str, Any]) -> list[str]:
    """The texts of a message Slack parses for mentions: the top-level text and every mrkdwn object
    (plain_text is shown literally, so a "<!here>" there pings nobody)."""
    out = [message.get("text") or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks") or [])
    return out


def _as_rendered(markdown: str) -> str:
    """What a reader sees of a GitLab description: entities decoded, no invisible joiners, no hard-break
    trailing spaces."""
    text = html.unescape(markdown).replace("\u2060", "")
    return re.sub(r"[ ]+\n", "\n", text)


def test_quick_actions_and_mentions_in_request_do_nothing(client, fake_slack, fake_gitlab, settings):
    t0 = file_request(client, fake_slack, customer_name=HOSTILE_CUSTOMER, pain=HOSTILE_PAIN, why_now=HOSTILE_WHY,
                      additional_context=HOSTILE_CONTEXT)
    run_once(settings, t0)

    assert fake_gitlab.executed_quick_actions == []
    [issue] = issues(fake_gitlab)
    assert issue["state"] == "opened"
    assert issue["assignees"] == [] and issue.get("assignee") is None
    assert issue["confidential"] is False
    assert set(issue["labels"]) <= CONTRACT_LABELS
    assert not {"foo", "bar"} & {lab["name"] for lab in fake_gitlab.labels(PROJECT)}
    assert not _GITLAB_MENTION.search(issue["description"]), "a mention GitLab would notify"
    assert not _GITLAB_MENTION.search(issue["title"])
    # The AE's words still read as written, slashes and all.
    seen = _as_rendered(issue["description"])
    for text in (HOSTILE_PAIN, HOSTILE_WHY, HOSTILE_CONTEXT):
        for line in text.splitlines():
            assert line.rstrip() in seen, f"{line!r} is not shown as written"
    assert "/close Acme @all" in _as_rendered(issue["title"]) + seen

    posted = cards(fake_slack) + fake_slack.messages_in(AE)
    assert len(posted) == 2  # the card and the landed DM
    for m in posted:
        for text in parsed_texts(m):
            assert not _SLACK_BROADCAST.search(text), f"a mass mention in {text!r}"
    card_text = json.dumps(cards(fake_slack)[0]["blocks"], ensure_ascii=False)
    assert "/close" in card_text and "&lt;!channel&gt;" in card_text  # shown, as text


# ------------------------------------------------------------------ two workers


@pytest.mark.postgres
def test_two_workers_at_once_deliver_each_entry_once(pg_url, config_path, fake_slack, fake_gitlab, monkeypatch):
    settings = make_settings(
        DATABASE_URL=pg_url, TRIAGE_CONFIG=str(config_path), SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET="test-signing-secret", SLACK_API_URL=fake_slack.url, GITLAB_URL=fake_gitlab.url,
        GITLAB_TOKEN=GITLAB_TOKEN, TRIAGE_EMBEDDED_WORKER=False,
    )
    upgrade(pg_url)
    with TestClient(create_app(settings, migrate=False, worker=False)) as client:
        for i in range(3):
            t0 = file_request(client, fake_slack, customer_name=f"Customer {i}",
                              opportunity=["0065g00000AbCdEAAV", "006000000000001", "006000000000002"][i])
    fake_gitlab.set_delay(0.05)  # slow enough that the two passes overlap
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    # Both workers reach for the outbox at the same instant on their first batch (synchronisation only:
    # the claim itself is the app's).
    real_claim, together, first = outbox.claim_due, threading.Barrier(2), threading.local()

    def claim_together(*args, **kwargs):
        if not getattr(first, "done", False):
            first.done = True
            together.wait(timeout=10)
        return real_claim(*args, **kwargs)

    monkeypatch.setattr(outbox, "claim_due", claim_together)

    def one_pass() -> None:
        try:
            start.wait(timeout=10)
            run_once(settings, t0)
            run_once(settings, t0 + timedelta(seconds=1))
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    fake_gitlab.set_delay(0)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads)

    found = issues(fake_gitlab)
    assert sorted(i["title"] for i in found) == sorted({i["title"] for i in found}) and len(found) == 3
    assert issue_posts(fake_gitlab) == 3
    posted = cards(fake_slack)
    assert len(posted) == 3
    assert len({m["ts"] for m in posted}) == 3
    assert dm_kinds(fake_slack) == ["landed"] * 3
