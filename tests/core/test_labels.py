"""GitLab labels the boards rely on: exact names, which a new issue gets, and how status moves lists."""

from __future__ import annotations

import re

import pytest

from triage.core import labels
from triage.core.fields import ASKS, REQUEST_TYPES
from triage.core.labels import (
    ALL_LABELS,
    BOARD_LISTS,
    LABEL_SPECS,
    STATUS_LABEL,
    TYPE_LABEL,
    labels_for_new_request,
    status_label_change,
)

CONTRACT_LABELS = [
    "SA Triaged",
    "SA Doing",
    "SA Waiting",
    "SA Followup",
    "SA Demo Ready",
    "SA POV",
    "Security Audit",
    "Services Request",
    "Expedite",
    "SA Activity",
    "Follow Up",
    "Vendor Security Assessment",
    "SA Event Request",
]


def test_every_contract_label_is_created_once_with_colour_and_description():
    assert list(ALL_LABELS) == CONTRACT_LABELS
    assert [spec.name for spec in LABEL_SPECS] == CONTRACT_LABELS
    for spec in LABEL_SPECS:
        assert re.fullmatch(r"#[0-9A-F]{6}", spec.color)
        assert spec.description
        assert "\n" not in spec.description
        assert "," not in spec.name  # GitLab label titles can't contain commas


@pytest.mark.parametrize(
    ("constant", "name"),
    [
        ("SA_TRIAGED", "SA Triaged"),
        ("SA_DOING", "SA Doing"),
        ("SA_WAITING", "SA Waiting"),
        ("SA_FOLLOWUP", "SA Followup"),
        ("SA_DEMO_READY", "SA Demo Ready"),
        ("SA_POV", "SA POV"),
        ("SECURITY_AUDIT", "Security Audit"),
        ("SERVICES_REQUEST", "Services Request"),
        ("EXPEDITE", "Expedite"),
    ],
)
def test_workflow_label_constants(constant, name):
    assert getattr(labels, constant) == name


def test_board_lists_are_the_status_labels_in_workflow_order():
    assert BOARD_LISTS == ("SA Triaged", "SA Doing", "SA Waiting", "SA Followup", "SA Demo Ready")
    assert set(STATUS_LABEL.values()) == set(BOARD_LISTS)
    assert set(TYPE_LABEL) == set(REQUEST_TYPES)


@pytest.mark.parametrize(
    ("request_type", "asks", "expedite", "expected"),
    [
        ("opportunity", ["demo"], False, ["SA Activity"]),
        ("opportunity", ["demo", "pov"], True, ["SA Activity", "SA POV", "Expedite"]),
        ("follow_up", ["sow"], False, ["Follow Up", "Services Request"]),
        (
            "security_assessment",
            ["security_questionnaire"],
            False,
            ["Vendor Security Assessment", "Security Audit"],
        ),
        ("event", [], True, ["SA Event Request", "Expedite"]),
        ("opportunity", list(ASKS), False, ["SA Activity", "SA POV", "Services Request", "Security Audit"]),
        ("opportunity", ["pov", "pov", "sow"], False, ["SA Activity", "SA POV", "Services Request"]),
    ],
)
def test_labels_for_new_request(request_type, asks, expedite, expected):
    assert labels_for_new_request(request_type, asks, expedite) == expected


@pytest.mark.parametrize(
    ("old", "new", "add", "remove"),
    [
        ("open", "claimed", ["SA Triaged"], ["SA Doing", "SA Waiting", "SA Followup", "SA Demo Ready"]),
        ("claimed", "doing", ["SA Doing"], ["SA Triaged", "SA Waiting", "SA Followup", "SA Demo Ready"]),
        ("doing", "waiting", ["SA Waiting"], ["SA Triaged", "SA Doing", "SA Followup", "SA Demo Ready"]),
        ("waiting", "followup", ["SA Followup"], ["SA Triaged", "SA Doing", "SA Waiting", "SA Demo Ready"]),
        ("doing", "demo_ready", ["SA Demo Ready"], ["SA Triaged", "SA Doing", "SA Waiting", "SA Followup"]),
        ("demo_ready", "done", [], list(BOARD_LISTS)),  # done closes the issue
        ("claimed", "open", [], list(BOARD_LISTS)),  # unclaimed: back to the open column
        ("open", "declined", [], list(BOARD_LISTS)),
        ("doing", "doing", [], []),
    ],
)
def test_status_change_moves_the_issue_to_exactly_one_list(old, new, add, remove):
    assert status_label_change(old, new) == (add, remove)
    assert not set(add) & set(remove)


@pytest.mark.parametrize(("old", "new"), [("doing", "finished"), ("started", "doing")])
def test_unknown_status_is_a_programming_error(old, new):
    with pytest.raises(ValueError, match="unknown status"):
        status_label_change(old, new)
