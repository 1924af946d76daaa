"""Targets: parsing, round-trips, which target applies, and display helpers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triage.core.sla import Target, format_duration, humanize_left, parse_duration, resolve_target

H = timedelta(hours=1)
M = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", Target(0, 24 * 60)),
        ("48h", Target(0, 48 * 60)),
        ("5d", Target(5, 0)),
        ("90m", Target(0, 90)),
        ("30m", Target(0, 30)),
        ("1d 4h", Target(1, 4 * 60)),
        ("1h30m", Target(0, 90)),
        (" 2D ", Target(2, 0)),
        ("1d 4h 30m", Target(1, 270)),
        ("4h 1d", Target(1, 240)),
    ],
)
def test_parse_duration(text: str, expected: Target) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "rendered"),
    [("24h", "24h"), ("48h", "48h"), ("5d", "5d"), ("90m", "1h 30m"), ("1d 4h", "1d 4h"), ("30m", "30m")],
)
def test_str_is_canonical(text: str, rendered: str) -> None:
    assert str(parse_duration(text)) == rendered


@given(st.integers(0, 60), st.integers(0, 100_000))
def test_str_round_trips(days: int, minutes: int) -> None:
    target = Target(days, minutes)
    if target == Target():
        return
    assert parse_duration(str(target)) == target


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty duration"),
        ("   ", "empty duration"),
        ("24", "e.g."),
        ("h", "e.g."),
        ("24x", "e.g."),
        ("1.5h", "e.g."),
        ("-1h", "e.g."),
        ("24 hours", "e.g."),
        ("1h 2h", '"h" appears twice'),
        ("0h", "longer than zero"),
        ("0d 0m", "longer than zero"),
        ("abc 1h", "e.g."),
    ],
)
def test_parse_duration_errors_are_readable(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match="duration") as info:
        parse_duration(text)
    assert fragment in str(info.value)


def test_parse_duration_rejects_non_strings() -> None:
    with pytest.raises(ValueError, match="24h"):
        parse_duration(24)  # type: ignore[arg-type]


def test_target_days_depend_on_the_day_length() -> None:
    assert Target(5, 0).as_timedelta() == timedelta(days=5)
    assert Target(5, 0).as_timedelta(8 * H) == 40 * H
    assert Target(1, 240).as_timedelta(8 * H) == 12 * H
    with pytest.raises(ValueError, match="negative"):
        Target(-1, 0)


TARGETS = {
    "opportunity": parse_duration("24h"),
    "follow_up": parse_duration("48h"),
    "security_assessment": parse_duration("48h"),
    "event": parse_duration("5d"),
    "expedite": parse_duration("24h"),
}


@pytest.mark.parametrize(
    ("request_type", "expedite", "expected"),
    [
        ("opportunity", False, "24h"),
        ("follow_up", False, "48h"),
        ("event", False, "5d"),
        ("follow_up", True, "24h"),
        ("security_assessment", True, "24h"),
        ("event", True, "24h"),
        ("opportunity", True, "24h"),
    ],
)
def test_resolve_target_defaults(request_type: str, expedite: bool, expected: str) -> None:
    assert resolve_target(request_type, expedite, TARGETS, {}) == parse_duration(expected)


def test_expedite_never_lengthens_a_shorter_own_target() -> None:
    overrides = {"opportunity": parse_duration("12h")}
    assert resolve_target("opportunity", True, TARGETS, overrides) == parse_duration("12h")
    assert resolve_target("opportunity", False, TARGETS, overrides) == parse_duration("12h")


def test_queue_overrides_apply_to_types_and_expedite() -> None:
    overrides = {"event": parse_duration("10d"), "expedite": parse_duration("8h")}
    assert resolve_target("event", False, TARGETS, overrides) == parse_duration("10d")
    assert resolve_target("event", True, TARGETS, overrides) == parse_duration("8h")
    assert resolve_target("follow_up", True, TARGETS, overrides) == parse_duration("8h")
    assert resolve_target("follow_up", False, TARGETS, None) == parse_duration("48h")


def test_resolve_target_compares_days_on_the_clock() -> None:
    # On business hours "2d" is 16h: shorter than a 24h expedite, so it stays.
    targets = {"event": parse_duration("2d"), "expedite": parse_duration("24h")}
    assert resolve_target("event", True, targets, day_length=8 * H) == parse_duration("2d")
    assert resolve_target("event", True, targets) == parse_duration("24h")


def test_resolve_target_without_expedite_target_keeps_own() -> None:
    targets = {"opportunity": parse_duration("24h")}
    assert resolve_target("opportunity", True, targets, {}) == parse_duration("24h")


def test_resolve_target_unknown_type() -> None:
    with pytest.raises(ValueError, match=r'no SLA target for request type "nope" \(known: event, follow_up'):
        resolve_target("nope", False, TARGETS, {})


@pytest.mark.parametrize(
    ("td", "text"),
    [
        (3 * H + 20 * M, "3h 20m"),
        (timedelta(days=2, hours=4), "2d 4h"),
        (timedelta(days=2, hours=4, minutes=59), "2d 4h"),
        (45 * M, "45m"),
        (timedelta(0), "0m"),
        (timedelta(seconds=59.6), "1m"),
        (H, "1h"),
        (timedelta(days=2), "2d"),
        (-(2 * H + 5 * M), "-2h 5m"),
    ],
)
def test_format_duration(td: timedelta, text: str) -> None:
    assert format_duration(td) == text


def test_humanize_left() -> None:
    now = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
    assert humanize_left(now + 3 * H + 20 * M, now) == "due in 3h 20m"
    assert humanize_left(now - 2 * H - 5 * M, now) == "2h 5m late"
    assert humanize_left(now + timedelta(seconds=30), now) == "due now"
    assert humanize_left(now + timedelta(days=1, hours=2), now) == "due in 1d 2h"
    with pytest.raises(ValueError, match="timezone-aware"):
        humanize_left(datetime(2026, 6, 1), now)


def test_parse_duration_rejects_absurd_targets() -> None:
    with pytest.raises(ValueError, match="at most a year"):
        parse_duration("99999999999999d")
    assert parse_duration("365d") == Target(365, 0)
