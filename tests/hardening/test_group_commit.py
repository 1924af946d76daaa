"""Submissions that arrive together are stored together (one transaction), and each AE still gets the
answer for their own modal: stored, already open, or refused. Both databases."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from tests.conftest import AE
from tests.flows.test_intake import GOOD
from triage.core.errors import Rejected
from triage.core.fields import RequestFields
from triage.db import session_scope
from triage.models import OutboxEntry, Request, RequestEvent
from triage.services import Duplicate, Submission, SubmitResult
from triage.services.group_commit import GroupCommit


def details(opportunity: str | None, **kw) -> RequestFields:
    return RequestFields.model_validate({**GOOD, "opportunity": opportunity, "requester_name": "ae", **kw})


def opp(n: int) -> str:
    return f"0065g00000AbC{n:02d}AAA"


def counts(app) -> tuple[int, int, int]:
    with session_scope(app.services.engine) as s:
        return (s.execute(sa.select(sa.func.count()).select_from(Request)).scalar_one(),
                s.execute(sa.select(sa.func.count()).select_from(RequestEvent)).scalar_one(),
                s.execute(sa.select(sa.func.count()).select_from(OutboxEntry)
                          .where(OutboxEntry.kind == "create_issue")).scalar_one())


def test_a_batch_gives_each_submission_its_own_answer(app):
    now = datetime.now(UTC)
    first = app.services.submit(submission_key="V-open", requester=AE, cleaned=details(opp(1)), now=now)
    results = app.services.submit_many([
        Submission("V-a", AE, details(opp(2))),
        Submission("V-b", "U0AE00002", details(opp(1))),  # opp(1) is open already: the AE is shown it
        Submission("V-c", AE, details(opp(3), queue="no-such-queue")),
        Submission("V-d", "U0AE00003", details(None, request_type="security_assessment")),
    ], now=now)
    assert isinstance(results[0], SubmitResult) and results[0].created
    assert isinstance(results[1], Duplicate) and results[1].request_id == first.request_id
    assert isinstance(results[2], Rejected)
    assert isinstance(results[3], SubmitResult) and results[3].created
    # Two new requests, each with its audit events and the entry that files it on GitLab.
    assert counts(app) == (3, 6, 3)


def test_two_submissions_for_one_opportunity_in_one_batch_file_one_and_show_it_to_the_other(app):
    results = app.services.submit_many([
        Submission("V-1", AE, details(opp(5))),
        Submission("V-2", "U0AE00002", details(opp(5))),
    ])
    assert isinstance(results[0], SubmitResult) and results[0].created
    assert isinstance(results[1], Duplicate) and results[1].request_id == results[0].request_id
    assert counts(app)[0] == 1


def test_a_slack_retry_inside_a_batch_is_the_stored_request_and_the_rest_still_land(app):
    stored = app.services.submit(submission_key="V-retried", requester=AE, cleaned=details(None))
    results = app.services.submit_many([
        Submission("V-new", AE, details(opp(7))),
        Submission("V-retried", AE, details(None)),  # the same modal again: no second request
    ])
    assert isinstance(results[0], SubmitResult) and results[0].created
    assert results[1] == SubmitResult(stored.request_id, stored.reference, created=False)
    assert counts(app)[0] == 2


def test_a_submission_the_database_refuses_fails_alone_and_the_rest_of_its_batch_lands(app):
    if app.services.engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce the column's length")
    # requester_name is the Slack user's name, 255 characters at most in the column: one longer than
    # that is refused by PostgreSQL, and it must not take the other AEs' submissions with it.
    results = app.services.submit_many([
        Submission("V-x", AE, details(opp(7))),
        Submission("V-y", "U0AE00002", details(opp(8), requester_name="n" * 300)),
        Submission("V-z", "U0AE00003", details(opp(9))),
    ])
    assert isinstance(results[0], SubmitResult) and isinstance(results[2], SubmitResult)
    assert isinstance(results[1], sa.exc.DataError)
    assert counts(app) == (2, 4, 2)


def test_concurrent_submissions_wait_for_their_own_commit_and_share_the_next_one():
    """While one transaction commits, the submissions that arrive wait and go into the next one together;
    no one is answered before the transaction holding their submission has committed."""
    committing = threading.Event()
    release = threading.Event()
    batches: list[list[int]] = []
    committed: set[int] = set()

    def store(items):
        batches.append(list(items))
        if len(batches) == 1:
            committing.set()
            release.wait(10)  # a slow commit: the others arrive meanwhile
        committed.update(items)
        return [f"stored {i}" if i != 7 else Rejected("refused") for i in items]

    async def scenario():
        group: GroupCommit[int, str] = GroupCommit(store)

        async def one(i: int):
            try:
                result = await group.submit(i)
            except Rejected as e:
                result = f"refused: {e}"
            assert i in committed, "answered before its transaction committed"
            return result

        first = asyncio.create_task(one(0))
        await asyncio.to_thread(committing.wait, 10)
        rest = [asyncio.create_task(one(i)) for i in range(1, 10)]
        await asyncio.sleep(0)  # let them all queue behind the slow commit
        release.set()
        return [await first] + [await t for t in rest]

    results = asyncio.run(scenario())
    assert batches == [[0], list(range(1, 10))]
    assert results == [f"stored {i}" for i in range(7)] + ["refused: refused"] + ["stored 8", "stored 9"]


def test_a_failed_transaction_is_an_error_for_everyone_in_it_and_the_next_batch_still_runs():
    calls = []

    def store(items):
        calls.append(list(items))
        if len(calls) == 1:
            raise ConnectionError("database down")
        return [f"stored {i}" for i in items]

    async def scenario():
        group: GroupCommit[int, str] = GroupCommit(store)
        with pytest.raises(ConnectionError):
            await group.submit(1)
        return await group.submit(2)

    assert asyncio.run(scenario()) == "stored 2"
