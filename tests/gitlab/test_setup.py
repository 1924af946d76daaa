"""Board setup and webhook checks (triage setup / triage check) against the fake GitLab, over HTTP, with the
real python-gitlab client."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.fakes.gitlab_api import FakeGitLab
from triage.gitlab_setup import apply_setup, hook_status, plan_setup
from triage.gitlab_tracker import GitLabTracker

TOKEN = "glpat-test"
PROJECT = "sa-triage-boards/amer-east"


@dataclass(frozen=True)
class Spec:
    name: str
    color: str
    description: str | None = None


SPECS = [
    Spec("SA Triaged", "#428BCA", "An SA owns it"),
    Spec("SA Doing", "#1F75CB"),
    Spec("SA Waiting", "#FFECDB"),
    Spec("Expedite", "#DC143C", "Expedited request"),
]
LISTS = ["SA Triaged", "SA Doing", "SA Waiting"]


@pytest.fixture
def fake():
    with FakeGitLab(token=TOKEN) as f:
        f.add_project(PROJECT, id=7)
        yield f
        assert f.server_errors == []


@pytest.fixture
def tracker(fake):
    return GitLabTracker(fake.url, TOKEN, timeout=5)


# ---------------------------------------------------------------- setup
def test_setup_plans_applies_and_second_run_does_nothing(fake, tracker):
    fake.add_label(PROJECT, "SA Doing", color="#000000", description="ours, keep it")
    plan = plan_setup(tracker, PROJECT, SPECS, LISTS)
    assert plan == [
        "create label 'SA Triaged'",
        "create label 'SA Waiting'",
        "create label 'Expedite'",
        "create board 'SA triage'",
        "add list 'SA Triaged' to board 'SA triage'",
        "add list 'SA Doing' to board 'SA triage'",
        "add list 'SA Waiting' to board 'SA triage'",
    ]
    assert not fake.calls_matching("POST", ".")
    assert apply_setup(tracker, PROJECT, SPECS, LISTS) == plan

    labels = {lab["name"]: lab for lab in fake.labels(PROJECT)}
    assert labels["SA Triaged"]["color"] == "#428BCA" and labels["SA Triaged"]["description"] == "An SA owns it"
    assert labels["SA Doing"]["color"] == "#000000"  # existing label untouched
    (board,) = fake.boards(PROJECT)
    assert board["name"] == "SA triage"
    assert [x["label"]["name"] for x in board["lists"]] == LISTS

    fake.reset_calls()
    assert apply_setup(tracker, PROJECT, SPECS, LISTS) == []
    assert plan_setup(tracker, PROJECT, SPECS, LISTS) == []
    assert not fake.calls_matching("POST", ".")


def test_setup_completes_a_partial_board(fake, tracker):
    apply_setup(tracker, PROJECT, SPECS, LISTS[:1])
    assert apply_setup(tracker, PROJECT, SPECS, LISTS) == [
        "add list 'SA Doing' to board 'SA triage'",
        "add list 'SA Waiting' to board 'SA triage'",
    ]
    assert len(fake.boards(PROJECT)) == 1


# ---------------------------------------------------------------- webhooks
def test_hook_status(fake, tracker):
    fake.add_hook(PROJECT, "https://triage.example/gitlab/webhook")
    fake.add_hook(PROJECT, "https://triage.example/gitlab/webhook2", note_events=False)
    fake.add_hook(PROJECT, "https://triage.example/gitlab/webhook3", disabled="temporarily")
    fake.add_hook(PROJECT, "https://elsewhere.example/hook", disabled=True)
    hooks = hook_status(tracker, PROJECT, "https://triage.example/")
    assert [(h["url"].rsplit("/", 1)[-1], h["ok"], h["disabled"]) for h in hooks] == [
        ("webhook", True, False),
        ("webhook2", False, False),
        ("webhook3", False, True),
    ]
    assert hooks[2]["alert_status"] == "temporarily_disabled" and hooks[2]["disabled_until"] is not None
    everything = hook_status(tracker, PROJECT)
    assert len(everything) == 4 and everything[3]["alert_status"] == "disabled"
