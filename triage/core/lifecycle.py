"""A request's states and who may move it where. Pure: the caller loads the request and the person.

    open ──claim/assign──▶ claimed ──status──▶ doing / waiting / followup / demo_ready ──▶ done
      ▲                       │                                                    (any open state)
      └────── unclaim ────────┘                                     decline ──▶ declined

Whether someone is in the queue's SA group is the caller's check; these functions get its result.
"""

from __future__ import annotations

from enum import StrEnum

from triage.core.errors import AlreadyClaimed, InvalidTransition, NotAllowed


class Status(StrEnum):
    OPEN = "open"  # waiting for an SA
    CLAIMED = "claimed"
    DOING = "doing"
    WAITING = "waiting"
    FOLLOWUP = "followup"
    DEMO_READY = "demo_ready"
    DONE = "done"
    DECLINED = "declined"


ACTIVE_STATUSES: frozenset[str] = frozenset(
    {Status.OPEN, Status.CLAIMED, Status.DOING, Status.WAITING, Status.FOLLOWUP, Status.DEMO_READY}
)
CLOSED_STATUSES: frozenset[str] = frozenset({Status.DONE, Status.DECLINED})

# The options of the card's `status` select, in this order; option values are part of messages already
# posted, so they don't change. "waiting" is also where needs_info goes.
SETTABLE_STATUSES: tuple[str, ...] = (
    Status.DOING,
    Status.WAITING,
    Status.FOLLOWUP,
    Status.DEMO_READY,
    Status.DONE,
)


def is_open(status: str) -> bool:
    """True until the request is done or declined (whether or not an SA holds it)."""
    return status in ACTIVE_STATUSES


def _check_active(status: str) -> None:
    if status in CLOSED_STATUSES:
        raise InvalidTransition(f"This request is already {status}.")
    if status not in ACTIVE_STATUSES:
        raise InvalidTransition(f"Unknown request status {status!r}.")


def check_claim(status: str, owner: str | None, actor: str) -> None:
    """May actor claim it? Claiming what you already hold is fine (a double click)."""
    _check_active(status)
    if owner and owner != actor:
        raise AlreadyClaimed(owner)


def check_assign(status: str, *, is_leader: bool) -> None:
    """May a leader give it to an SA? Reassigning a claimed request is allowed."""
    if not is_leader:
        raise NotAllowed("Only a leader can assign requests.")
    _check_active(status)


def check_status_change(
    status: str, new_status: str, *, actor: str, owner: str | None, is_leader: bool
) -> None:
    """May actor set new_status? Only the SA holding it or a leader; never on a closed request."""
    if new_status not in SETTABLE_STATUSES:
        raise InvalidTransition(f"{new_status!r} isn't a status you can set.")
    _check_active(status)
    if actor != owner and not is_leader:
        raise NotAllowed("Only the SA who has this request, or a leader, can change its status.")
    if owner is None or status == Status.OPEN:
        raise InvalidTransition("Nobody has this request yet; claim or assign it first.")


def check_unclaim(status: str, *, actor: str, owner: str | None, is_leader: bool) -> None:
    """May actor hand it back to the queue? The SA holding it, or a leader."""
    _check_active(status)
    if owner is None or status == Status.OPEN:
        raise InvalidTransition("Nobody has claimed this request.")
    if actor != owner and not is_leader:
        raise NotAllowed("Only the SA who claimed this request, or a leader, can unclaim it.")


def check_decline(status: str) -> None:
    """Can it still be declined (or asked for more info)? Any SA in the group may; it must be open."""
    _check_active(status)
