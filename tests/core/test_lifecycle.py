"""Who may claim, unclaim and move a request, and when it's too late."""

from __future__ import annotations

import pytest

from triage.core.errors import AlreadyClaimed, InvalidTransition, LifecycleError, NotAllowed
from triage.core.lifecycle import (
    ACTIVE_STATUSES,
    CLOSED_STATUSES,
    SETTABLE_STATUSES,
    Status,
    check_assign,
    check_claim,
    check_decline,
    check_status_change,
    check_unclaim,
    is_open,
)

SA, OTHER, LEAD = "U0SA1", "U0SA2", "U0LEAD1"


def test_states_are_plain_strings():
    assert {s.value for s in Status} == {
        "open",
        "claimed",
        "doing",
        "waiting",
        "followup",
        "demo_ready",
        "done",
        "declined",
    }
    assert Status.DOING == "doing"
    assert set(Status) == ACTIVE_STATUSES | CLOSED_STATUSES
    assert not ACTIVE_STATUSES & CLOSED_STATUSES
    assert SETTABLE_STATUSES == ("doing", "waiting", "followup", "demo_ready", "done")


@pytest.mark.parametrize(
    ("status", "expected"), [*((s, True) for s in ACTIVE_STATUSES), ("done", False), ("declined", False)]
)
def test_is_open(status, expected):
    assert is_open(status) is expected


@pytest.mark.parametrize(
    ("status", "owner", "actor", "error"),
    [
        ("open", None, SA, None),
        ("claimed", SA, SA, None),  # a double click on Claim is harmless
        ("doing", SA, SA, None),
        ("claimed", OTHER, SA, AlreadyClaimed),
        ("waiting", OTHER, SA, AlreadyClaimed),
        ("done", None, SA, InvalidTransition),
        ("declined", None, SA, InvalidTransition),
        ("done", SA, SA, InvalidTransition),
        ("archived", None, SA, InvalidTransition),
    ],
)
def test_check_claim(status, owner, actor, error):
    if error is None:
        check_claim(status, owner, actor)
    else:
        with pytest.raises(error):
            check_claim(status, owner, actor)


def test_already_claimed_names_who_has_it():
    with pytest.raises(AlreadyClaimed) as info:
        check_claim("claimed", OTHER, SA)
    assert info.value.owner == OTHER
    assert OTHER in str(info.value)


@pytest.mark.parametrize(
    ("status", "new", "actor", "owner", "is_leader", "error"),
    [
        ("claimed", "doing", SA, SA, False, None),
        ("doing", "waiting", SA, SA, False, None),
        ("waiting", "followup", SA, SA, False, None),
        ("followup", "demo_ready", SA, SA, False, None),
        ("demo_ready", "done", SA, SA, False, None),
        ("doing", "doing", SA, SA, False, None),
        ("doing", "done", LEAD, SA, True, None),  # a leader may move anyone's request
        ("doing", "done", OTHER, SA, False, NotAllowed),
        ("claimed", "doing", OTHER, SA, False, NotAllowed),
        ("open", "doing", SA, None, False, NotAllowed),
        ("open", "doing", LEAD, None, True, InvalidTransition),  # nobody to do it yet
        ("done", "doing", SA, SA, False, InvalidTransition),
        ("declined", "doing", LEAD, None, True, InvalidTransition),
        ("doing", "claimed", SA, SA, False, InvalidTransition),  # not an option of the status menu
        ("doing", "declined", SA, SA, False, InvalidTransition),
        ("doing", "shipped", SA, SA, False, InvalidTransition),
    ],
)
def test_check_status_change(status, new, actor, owner, is_leader, error):
    if error is None:
        check_status_change(status, new, actor=actor, owner=owner, is_leader=is_leader)
    else:
        with pytest.raises(error):
            check_status_change(status, new, actor=actor, owner=owner, is_leader=is_leader)


@pytest.mark.parametrize(
    ("status", "actor", "owner", "is_leader", "error"),
    [
        ("claimed", SA, SA, False, None),
        ("waiting", SA, SA, False, None),
        ("doing", LEAD, SA, True, None),
        ("doing", OTHER, SA, False, NotAllowed),
        ("open", SA, None, False, InvalidTransition),
        ("done", SA, SA, False, InvalidTransition),
        ("declined", LEAD, None, True, InvalidTransition),
    ],
)
def test_check_unclaim(status, actor, owner, is_leader, error):
    if error is None:
        check_unclaim(status, actor=actor, owner=owner, is_leader=is_leader)
    else:
        with pytest.raises(error):
            check_unclaim(status, actor=actor, owner=owner, is_leader=is_leader)


@pytest.mark.parametrize(
    ("status", "is_leader", "error"),
    [
        ("open", True, None),
        ("claimed", True, None),  # reassigning
        ("open", False, NotAllowed),
        ("done", True, InvalidTransition),
    ],
)
def test_check_assign(status, is_leader, error):
    if error is None:
        check_assign(status, is_leader=is_leader)
    else:
        with pytest.raises(error):
            check_assign(status, is_leader=is_leader)


@pytest.mark.parametrize(
    ("status", "ok"), [("open", True), ("doing", True), ("done", False), ("declined", False)]
)
def test_check_decline(status, ok):
    if ok:
        check_decline(status)
    else:
        with pytest.raises(InvalidTransition):
            check_decline(status)


def test_errors_carry_a_message_for_the_user():
    with pytest.raises(LifecycleError, match="already done"):
        check_claim("done", None, SA)
    with pytest.raises(NotAllowed, match="leader"):
        check_status_change("doing", "done", actor=OTHER, owner=SA, is_leader=False)
