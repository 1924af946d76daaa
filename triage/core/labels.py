"""GitLab labels: the names the SA triage boards use, and which apply when (the SA handbook's "Board Label
Descriptions"). The names are shared with the boards people already run (their lists and saved filters use
them), so they are kept exactly as written here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

# Workflow labels, exactly as the boards name them.
SA_TRIAGED = "SA Triaged"
SA_DOING = "SA Doing"
SA_WAITING = "SA Waiting"
SA_FOLLOWUP = "SA Followup"
SA_DEMO_READY = "SA Demo Ready"
SA_POV = "SA POV"
SECURITY_AUDIT = "Security Audit"
SERVICES_REQUEST = "Services Request"
EXPEDITE = "Expedite"

# One type label per request.
SA_ACTIVITY = "SA Activity"
FOLLOW_UP = "Follow Up"
VENDOR_SECURITY_ASSESSMENT = "Vendor Security Assessment"
SA_EVENT_REQUEST = "SA Event Request"

TYPE_LABEL: dict[str, str] = {
    "opportunity": SA_ACTIVITY,
    "follow_up": FOLLOW_UP,
    "security_assessment": VENDOR_SECURITY_ASSESSMENT,
    "event": SA_EVENT_REQUEST,
}

# Only these asks have a label; the others live in the description.
ASK_LABELS: dict[str, str] = {
    "pov": SA_POV,
    "sow": SERVICES_REQUEST,
    "security_questionnaire": SECURITY_AUDIT,
}

# "done" closes the issue and "open"/"declined" have no list, so they have no label.
STATUS_LABEL: dict[str, str] = {
    "claimed": SA_TRIAGED,
    "doing": SA_DOING,
    "waiting": SA_WAITING,
    "followup": SA_FOLLOWUP,
    "demo_ready": SA_DEMO_READY,
}

# Labels a type always carries besides its own: a Vendor Security Assessment needs the security team
# ("Security Audit: this request requires security team involvement").
TYPE_EXTRA_LABELS: dict[str, tuple[str, ...]] = {"security_assessment": (SECURITY_AUDIT,)}

# The triage board's lists, left to right.
BOARD_LISTS: tuple[str, ...] = (SA_TRIAGED, SA_DOING, SA_WAITING, SA_FOLLOWUP, SA_DEMO_READY)

_STATUSES_WITHOUT_LABEL = frozenset({"open", "done", "declined"})


class LabelSpec(NamedTuple):
    """A label `triage setup` creates: name, colour (#RRGGBB) and a one-line description."""

    name: str
    color: str
    description: str


LABEL_SPECS: tuple[LabelSpec, ...] = (
    LabelSpec(SA_TRIAGED, "#1F78D1", "Issue ownership has been claimed by an SA"),
    LabelSpec(SA_DOING, "#428BCA", "The SA is working the issue until SA, customer and sales team agree it is done"),
    LabelSpec(SA_WAITING, "#F0AD4E", "The SA is waiting on the requestor for more information"),
    LabelSpec(SA_FOLLOWUP, "#8E44AD", "Follow-up work is required by the SA (e.g. research after a call)"),
    LabelSpec(SA_DEMO_READY, "#69D100", "Prep is complete; scheduling or further conversations can now occur"),
    LabelSpec(SA_POV, "#D10069", "A Proof of Value is being requested or needs support"),
    LabelSpec(SECURITY_AUDIT, "#CC0033", "Requires security team involvement (e.g. a security questionnaire)"),
    LabelSpec(SERVICES_REQUEST, "#5843AD", "This opportunity focuses on services (SOW / professional services)"),
    LabelSpec(EXPEDITE, "#FF0000", "Expedited: the shorter expedite SLA applies (never a longer one)"),
    LabelSpec(SA_ACTIVITY, "#7F8C8D", "Opportunity request from an account team"),
    LabelSpec(FOLLOW_UP, "#A8D695", "Follow-up to an earlier SA request"),
    LabelSpec(VENDOR_SECURITY_ASSESSMENT, "#AD4363", "Vendor security assessment request"),
    LabelSpec(SA_EVENT_REQUEST, "#009966", "SA wanted at an event; assigned by a leader"),
)

ALL_LABELS: tuple[str, ...] = tuple(spec.name for spec in LABEL_SPECS)


def labels_for_new_request(request_type: str, asks: Iterable[str], expedite: bool) -> list[str]:
    """Labels for a new issue: its type label (and what the type implies, e.g. a Vendor Security
    Assessment's "Security Audit"), the asks' labels, then "Expedite" (no duplicates)."""
    labels = [TYPE_LABEL[request_type], *TYPE_EXTRA_LABELS.get(request_type, ())]
    for ask in asks:
        label = ASK_LABELS.get(ask)
        if label and label not in labels:
            labels.append(label)
    if expedite:
        labels.append(EXPEDITE)
    return labels


def status_label_change(old_status: str, new_status: str) -> tuple[list[str], list[str]]:
    """(labels to add, labels to remove) when a request moves from old_status to new_status.

    Every other board-list label is removed, not just the old one, so a label someone added by hand on
    the board can't leave the issue showing in two lists.
    """
    for status in (old_status, new_status):
        if status not in STATUS_LABEL and status not in _STATUSES_WITHOUT_LABEL:
            raise ValueError(f"unknown status {status!r}")
    if old_status == new_status:
        return [], []
    new_label = STATUS_LABEL.get(new_status)
    add = [new_label] if new_label else []
    remove = [label for label in BOARD_LISTS if label != new_label]
    return add, remove


def status_dm(status: str, reference: str, customer: str) -> str | None:
    """What the requester is told when a request reaches `status`, if anything (plain words; the caller
    escapes `customer` for Slack)."""
    if status == "demo_ready":
        return (f"Prep for your request *{reference}* ({customer}) is complete: scheduling or further "
                "conversations with the customer can start now.")
    if status == "done":
        return f"Your request *{reference}* is done."
    return None
