"""A hand-made history for the leaders' summaries, driven through the real use cases with explicit times.

Calendar clock (every hour counts), opportunity 24h, follow-up 48h, expedite 24h; reporting zone UTC.
The week under test is Mon 2 to Sun 8 November 2026; "now" is Mon 9 November 12:00 UTC.

    ref  queue      type       received     what happened                                         SLA hours
    R1   amer-east  opp        Nov 2 10:00  SA1 claims Nov 2 16:00                                6  in time
    R2   amer-east  follow_up  Nov 3 09:00  needs info 10:00, answered Nov 4 10:00, SA2 claims 20:00   11 in time
    R3   amer-east  opp        Nov 4 00:00  SA1 claims 02:00, hands back 04:00, SA2 claims Nov 5 06:00 28 late
    R4   emea       opp exp.   Nov 5 12:00  declined 13:00                                        -
    R5   emea       opp        Nov 6 00:00  still open: breached (due Nov 7 00:00), reason capacity  -
    R6   amer-east  opp        Nov 1 23:00  before the week: SA1 claims Nov 2 01:00 (SA1's load only)
    R7   amer-east  opp        Nov 8 23:30  the week's last half hour: open, due Nov 9 23:30         -
    R8   amer-east  opp        Nov 9 00:00  the first instant after the week: not counted
    R10  amer-east  follow_up  Nov 6 08:00  expedited (24h, not 48h): SA1 claims Nov 7 10:00      26 late
    R11  emea       opp        Nov 7 00:00  needs info 01:00, still waiting: paused before its deadline,
                                            so not breached
R3's late claim gets the reason late_triage.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tests.conftest import AE, LEADER, SA1, SA2
from tests.flows.test_intake import GOOD
from triage.core import fields
from triage.services import Services

NOW = datetime(2026, 11, 9, 12, 0, tzinfo=UTC)
AE2 = "U0AE00002"


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def submit(services: Services, when: datetime, key: str, requester: str = AE, **overrides) -> int:
    values = {**GOOD, **overrides}
    if values.get("expedite"):
        values.setdefault("expedite_reason", "The customer's board meets on Friday.")
    result = fields.validate(values, now=when, queue_keys=services.config.queue_keys)
    assert not result.errors, result.errors
    return services.submit(submission_key=key, requester=requester, cleaned=result.cleaned, now=when).request_id


def seed(services: Services) -> dict[str, int]:
    ids: dict[str, int] = {}
    ids["R6"] = submit(services, at(1, 23), "r6")
    services.claim(ids["R6"], SA1, now=at(2, 1))

    ids["R1"] = submit(services, at(2, 10), "r1", customer_name="Initech")
    services.claim(ids["R1"], SA1, now=at(2, 16))

    ids["R2"] = submit(services, at(3, 9), "r2", request_type="follow_up", customer_name="Globex")
    services.needs_info(ids["R2"], SA2, "Which region hosts the pilot?", now=at(3, 10))
    services.answer(ids["R2"], AE, "us-east-1, and the pilot starts next week.", now=at(4, 10))
    services.claim(ids["R2"], SA2, now=at(4, 20))

    ids["R3"] = submit(services, at(4, 0), "r3", customer_name="Umbrella", requester=AE2)
    services.claim(ids["R3"], SA1, now=at(4, 2))
    services.unclaim(ids["R3"], SA1, now=at(4, 4))
    services.claim(ids["R3"], SA2, now=at(5, 6))
    services.record_breach_reason(ids["R3"], LEADER, "late_triage", None, now=at(5, 7))

    ids["R4"] = submit(services, at(5, 12), "r4", queue="emea", customer_name="Hooli", expedite=["expedite"])
    services.decline(ids["R4"], SA2, "Not a fit for an SA: it is a licensing question.", now=at(5, 13))

    ids["R5"] = submit(services, at(6, 0), "r5", queue="emea", customer_name="Stark Industries")
    services.record_breach_reason(ids["R5"], LEADER, "capacity", None, now=at(7, 1))

    ids["R10"] = submit(services, at(6, 8), "r10", request_type="follow_up", customer_name="Wayne Enterprises",
                        expedite=["expedite"])
    services.claim(ids["R10"], SA1, now=at(7, 10))

    ids["R11"] = submit(services, at(7, 0), "r11", queue="emea", customer_name="Wonka")
    services.needs_info(ids["R11"], SA2, "Who is the champion now?", now=at(7, 1))

    ids["R7"] = submit(services, at(8, 23, 30), "r7", customer_name="Cyberdyne")
    ids["R8"] = submit(services, at(9, 0), "r8", customer_name="Soylent")
    return ids
