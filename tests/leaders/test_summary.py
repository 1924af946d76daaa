"""Issue 10: the summary's figures against hand-computed expectations on a seeded week (tests/leaders/seed.py)."""

from __future__ import annotations

from datetime import date

from tests.conftest import SA1, SA2
from tests.leaders.conftest import WEEK
from tests.leaders.seed import AE2, NOW
from triage.services import summary


def test_totals_count_the_requests_received_in_the_week(history):
    services, _ = history
    s = summary.summary(services.engine, services.config, WEEK, now=NOW)
    assert (s["since"], s["until"], s["clock"]) == ("2026-11-02", "2026-11-08", "calendar")
    t = s["totals"]
    # R1 R2 R3 R4 R5 R7 R10 R11; not R6 (the Sunday before) nor R8 (midnight after).
    assert t["received"] == 8
    assert (t["allocated"], t["allocated_within_sla"], t["attainment"]) == (4, 2, 0.5)
    # SLA-clock hours 6 (R1), 11 (R2: a day waiting on the AE excluded), 26 (R10), 28 (R3: the two hours
    # SA1 held it excluded); percentile_cont: p50 = (11 + 26) / 2, p90 = 26 + 0.7 * (28 - 26).
    assert t["time_to_allocate_hours"] == {"p50": 18.5, "p90": 27.4}
    assert t["open_unallocated"] == 3  # R5, R7, R11 (waiting on the AE)
    assert t["breached_open"] == 1  # R5; R11's deadline moves while it waits
    assert (t["declined"], t["needs_info"], t["needs_info_rate"]) == (1, 2, 0.25)


def test_per_queue_and_per_type(history):
    services, _ = history
    s = summary.summary(services.engine, services.config, WEEK, now=NOW)
    queues = {q["queue"]: q for q in s["queues"]}
    amer, emea = queues["amer-east"], queues["emea"]
    assert (amer["received"], amer["allocated"], amer["allocated_within_sla"], amer["attainment"]) == (5, 4, 2, 0.5)
    assert (amer["open_unallocated"], amer["breached_open"]) == (1, 0)
    assert (emea["received"], emea["allocated"], emea["attainment"]) == (3, 0, None)
    assert emea["time_to_allocate_hours"] == {"p50": None, "p90": None}
    assert (emea["declined"], emea["breached_open"], emea["open_unallocated"], emea["needs_info"]) == (1, 1, 2, 1)
    types = {t["request_type"]: t for t in s["types"]}
    assert types["opportunity"]["received"] == 6
    # R10 was expedited: 26h against 24h is late, though a follow-up's own target is 48h.
    assert (types["follow_up"]["allocated"], types["follow_up"]["allocated_within_sla"]) == (2, 1)
    assert types["follow_up"]["time_to_allocate_hours"] == {"p50": 18.5, "p90": 24.5}


def test_sas_allocated_in_the_week_and_their_open_load(history):
    services, _ = history
    s = summary.summary(services.engine, services.config, WEEK, now=NOW)
    sas = {x["slack_user"]: x for x in s["sas"]}
    # SA1: R1 and R10 this week (R3 went to SA2); the load also counts R6 from the week before.
    assert (sas[SA1]["allocated"], sas[SA1]["open"]) == (2, 3)
    assert sas[SA1]["time_to_allocate_hours"] == {"p50": 16.0, "p90": 24.0}
    assert (sas[SA2]["allocated"], sas[SA2]["open"]) == (2, 2)
    assert sas[SA2]["time_to_allocate_hours"] == {"p50": 19.5, "p90": 26.3}
    assert s["sas"][0]["slack_user"] == SA1  # the most loaded first


def test_breach_reasons_and_the_misses_nobody_explained(history):
    services, _ = history
    s = summary.summary(services.engine, services.config, WEEK, now=NOW)
    assert s["breach_reasons"] == {"capacity": 1, "no_context": 0, "late_triage": 1, "other": 0}
    assert s["breach_reasons_unrecorded"] == 1  # R10


def test_a_queue_filter_and_period_edges(history):
    services, _ = history
    only = summary.summary(services.engine, services.config, WEEK, now=NOW, queues=["emea"])
    assert only["totals"]["received"] == 3 and [q["queue"] for q in only["queues"]] == ["emea"]
    # The Monday after holds R8 alone; the Sunday before holds R6 alone.
    after = summary.Period(date(2026, 11, 9), date(2026, 11, 9), WEEK.tz)
    before = summary.Period(date(2026, 11, 1), date(2026, 11, 1), WEEK.tz)
    assert summary.summary(services.engine, services.config, after, now=NOW)["totals"]["received"] == 1
    b = summary.summary(services.engine, services.config, before, now=NOW)["totals"]
    assert (b["received"], b["allocated"], b["time_to_allocate_hours"]["p50"]) == (1, 1, 2.0)


def test_waiting_list_flags_late_and_at_risk(history):
    services, ids = history
    lines = summary.waiting_requests(services.engine, services.config, now=NOW)
    by_ref = {line.reference: line for line in lines}
    assert set(by_ref) == {f"SAR-{ids[k]}" for k in ("R5", "R7", "R8", "R11")}
    assert by_ref[f"SAR-{ids['R5']}"].late and "late" in by_ref[f"SAR-{ids['R5']}"].left
    assert not by_ref[f"SAR-{ids['R11']}"].late and by_ref[f"SAR-{ids['R11']}"].left == "waiting on the AE"
    # R7 is due at 23:30 tonight: 11.5 of its 24 hours left, not yet at risk; R8 has 12h left.
    assert not by_ref[f"SAR-{ids['R7']}"].at_risk
    late = summary.late_and_at_risk(services.engine, services.config, now=NOW)
    assert [line.reference for line in late] == [f"SAR-{ids['R5']}"]


def test_alignment_pairs_aes_with_sas(history):
    services, _ = history
    pairs = {(p["ae"], p["sa"]): p for p in summary.alignment(services.engine, WEEK)}
    # AE2's R3 was claimed by SA1 (handed back) and then SA2, who holds it.
    assert pairs[(AE2, SA2)] == {"ae": AE2, "sa": SA2, "requests": 1, "claims": 1}
    assert pairs[(AE2, SA1)] == {"ae": AE2, "sa": SA1, "requests": 0, "claims": 1}


def test_weekly_trend_and_histogram(history):
    services, _ = history
    trend = summary.weekly_attainment(services.engine, services.config, until=date(2026, 11, 8), weeks=2)
    assert [(w["since"], w["received"], w["attainment"]) for w in trend] == [
        ("2026-10-26", 1, 1.0), ("2026-11-02", 8, 0.5)]
    hist = summary.time_to_allocate_histogram(services.engine, services.config, WEEK)
    # 6h in 4–8h, 11h in 8–24h, 26h and 28h in 24–48h.
    assert hist == {"amer-east": [0, 1, 1, 2, 0, 0]}
    assert summary.histogram_labels() == ["0–4h", "4–8h", "8–24h", "24–48h", "48–120h", "≥120h"]


def test_named_periods_in_the_reporting_time_zone():
    from datetime import UTC, datetime

    import pytest

    from triage.config import parse_config
    from triage.core.errors import ConfigError

    config = parse_config({"digest": {"day": "monday", "hour": 9, "timezone": "America/New_York"}})
    # 03:00 UTC on 1 December is still 30 November in New York.
    now = datetime(2026, 12, 1, 3, tzinfo=UTC)
    assert summary.period_named("7d", config, now).since.isoformat() == "2026-11-24"
    assert summary.period_named("30d", config, now).until.isoformat() == "2026-11-30"
    q = summary.period_named("quarter", config, now)
    assert (q.since.isoformat(), q.until.isoformat()) == ("2026-10-01", "2026-11-30")
    assert q.start == datetime(2026, 10, 1, 4, tzinfo=UTC)  # midnight EDT
    with pytest.raises(ValueError, match="7d, 30d or quarter"):
        summary.period_named("fortnight", config, now)
    with pytest.raises(ConfigError, match=r"digest\.day: 'someday' is not a day of the week"):
        parse_config({"digest": {"day": "someday"}})
    with pytest.raises(ConfigError, match=r"digest\.hour"):
        parse_config({"digest": {"hour": 24}})
    assert not parse_config({}).digest.enabled  # no [digest] table: no digest
