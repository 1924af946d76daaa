"""Request.unsaved: the ack path's cheap row is the same row Request(...) would be."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

from triage.models import Request

VALUES = dict(submission_key="V0001", created_at=datetime(2026, 12, 1, tzinfo=UTC),
              updated_at=datetime(2026, 12, 1, tzinfo=UTC), requester="U0AE00001", request_type="event",
              queue="amer", customer_name="Acme", opportunity_id="006000000000001AAA", expedite=True,
              fields={"why_now": "x"}, deadline=datetime(2026, 12, 6, tzinfo=UTC), gitlab_project="g/p",
              slack_channel="C0Q")


def test_an_unsaved_row_has_the_values_and_defaults_of_a_constructed_one():
    built, cheap = Request(**VALUES), Request.unsaved(**VALUES)
    for column in (c.name for c in Request.__table__.columns):
        assert getattr(cheap, column) == getattr(built, column), column
    assert cheap.status == "open" and cheap.owner is None and cheap.requester_tz == "UTC"
    cheap.fill(id=41, next_check_at=VALUES["deadline"])
    assert cheap.reference == "SAR-41" and cheap.next_check_at == VALUES["deadline"]


def test_an_unsaved_row_reads_in_a_process_that_has_run_no_query():
    # The mappers are configured lazily: a process whose first request is built this way must still read it.
    code = ("from datetime import UTC, datetime\nfrom triage.models import Request\n"
            "r = Request.unsaved(submission_key='V', requester='U', queue='q', customer_name='c',\n"
            "                    request_type='event', deadline=datetime.now(UTC), gitlab_project='g',\n"
            "                    slack_channel='C')\n"
            "print(r.status, r.allocated_at, r.reference)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["open", "None", "SAR-None"]
