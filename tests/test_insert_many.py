"""db.insert_many and db.fetch: the ack path's one-statement INSERT stores exactly what the ORM would, and
its SELECTs read what the ORM would, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from triage import outbox, repo
from triage.db import connection_history, fetch, insert_many, make_engine, session_scope, write_scope
from triage.migrate import upgrade
from triage.models import HomeViewer, OutboxEntry, Request, RequestEvent

NOW = datetime(2026, 12, 7, 9, 30, 15, 123456, tzinfo=UTC)
PARIS = timezone(timedelta(hours=1))


@pytest.fixture
def engine(db_url: str):
    upgrade(db_url)
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


def _request_row(n: int, **over) -> dict:
    request = Request.unsaved(
        submission_key=f"V{n:04d}", created_at=NOW, updated_at=NOW, requester="U0AE00001",
        request_type="event", queue="amer", customer_name=f"Acme {n} <b>&amp;</b> \"quoted\" 'single' \\ é 😀",
        opportunity_id=None, expedite=bool(n % 2), deadline=NOW.astimezone(PARIS) + timedelta(days=5),
        fields={"why_now": "line one\nline two", "asks": ["demo", "poc"], "event_date": "2026-12-20",
                "nested": {"n": n, "none": None, "float": 1.5}},
        gitlab_project="g/p", slack_channel="C0Q", salesforce_verified=None if n % 3 else False)
    row = {c.name: getattr(request, c.name) for c in Request.__table__.columns if c.name != "id"}
    row.update(over)
    return row


def test_requests_and_events_read_back_as_they_were_given(engine):
    rows = [_request_row(n) for n in range(1, 6)]
    with write_scope(engine) as conn:
        returned = insert_many(conn, Request.__table__, rows, returning=("submission_key", "id"))
        ids = {key: id_ for key, id_ in returned}
        insert_many(conn, RequestEvent.__table__, [
            {"request_id": ids[r["submission_key"]], "kind": "submitted", "source": "slack", "actor": None,
             "at": NOW, "detail": {"deadline": r["deadline"].isoformat()}} for r in rows])
    assert sorted(ids) == [r["submission_key"] for r in rows]
    with Session(engine) as s:
        for row in rows:
            stored = s.get(Request, ids[row["submission_key"]])
            for column, value in row.items():
                assert getattr(stored, column) == value, column
            assert stored.deadline.tzinfo is not None and stored.deadline.utcoffset() == timedelta(0)
            assert stored.status == "open" and stored.reference == f"SAR-{stored.id}"
        events = s.exec(sa.select(RequestEvent.request_id, RequestEvent.actor, RequestEvent.at)).all()
    assert sorted(e[0] for e in events) == sorted(ids.values())
    assert all(actor is None and at == NOW for _, actor, at in events)


def test_a_taken_dedupe_key_is_skipped_in_the_same_statement_and_across_statements(engine):
    entries = [outbox.entry(kind=outbox.Kind.POST, key=("post", n), payload={"channel": "C0Q", "text": f"t{n}"},
                            now=NOW) for n in (1, 2, 2, 3)]
    with write_scope(engine) as conn:
        outbox.enqueue_all(conn, entries)
    with session_scope(engine) as s:  # one at a time, through a session: says whether it was added
        assert outbox.enqueue(s, kind=outbox.Kind.POST, key=("post", 5), payload={"n": 5}, now=NOW) is True
        assert outbox.enqueue(s, kind=outbox.Kind.POST, key=("post", 5), payload={"n": 6}, now=NOW) is False
    with session_scope(engine) as s:  # through a session too, as the Home refresh does
        outbox.enqueue_all(s, [outbox.entry(kind=outbox.Kind.POST, key=("post", n), payload={"n": n}, now=NOW)
                               for n in (3, 4)])
    with Session(engine) as s:
        stored = s.exec(sa.select(OutboxEntry.dedupe_key, OutboxEntry.payload, OutboxEntry.attempts,
                                  OutboxEntry.done_at, OutboxEntry.next_attempt_at).order_by(OutboxEntry.id)).all()
    assert [k for k, *_ in stored] == [outbox.dedupe_key(("post", n)) for n in (1, 2, 3, 5, 4)]
    assert stored[2][1] == {"channel": "C0Q", "text": "t3"}  # the first entry with the key won
    assert all(attempts == 0 and done is None and due == NOW for _, _, attempts, done, due in stored)


def test_a_naive_datetime_is_refused_as_the_utc_columns_refuse_it(engine):
    with pytest.raises(Exception, match="naive datetime"), write_scope(engine) as conn:
        insert_many(conn, Request.__table__, [_request_row(1, deadline=datetime(2026, 12, 12, 9, 0))])
    with Session(engine) as s:
        assert s.exec(sa.select(sa.func.count()).select_from(Request)).one() == (0,)


def test_a_column_left_out_that_has_a_default_is_refused_not_stored_as_null(engine):
    row = _request_row(1)
    del row["status"]  # Request.status defaults to "open": NULL would be a different row
    with pytest.raises(ValueError, match="status"), write_scope(engine) as conn:
        insert_many(conn, Request.__table__, [row])


@pytest.mark.postgres
def test_on_postgresql_one_prepared_statement_serves_every_batch_size(pg_url):
    # The point of the JSON parameter: the statement's text does not depend on the number of rows, so
    # psycopg prepares it once (after its 5th use) instead of parsing a new VALUES list every time.
    upgrade(pg_url)
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        n = 0
        for size in (1, 4, 2, 7, 3, 5, 1, 6):
            with write_scope(engine) as conn:
                insert_many(conn, Request.__table__, [_request_row(n + i) for i in range(size)],
                            returning=("id",))
            n += size
        with engine.connect() as conn:
            prepared = conn.execute(sa.text(
                "SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'INSERT INTO request %'")).all()
            stored = conn.execute(sa.text("SELECT count(*) FROM request")).scalar()
    finally:
        engine.dispose()
    assert stored == n
    assert len(prepared) == 1 and "json_populate_recordset" in prepared[0][0]


def test_a_name_that_is_not_a_column_is_refused_on_both_databases(engine):
    with pytest.raises(ValueError, match="no column nickname"), write_scope(engine) as conn:
        insert_many(conn, Request.__table__, [_request_row(1, nickname="x")])


# -- db.fetch: the ack path's SELECTs on psycopg's own connection ---------------------------------------

def test_the_opportunity_lookup_finds_open_and_worked_requests_the_same_on_both_databases(engine):
    opp_a, opp_b, opp_c = "006AAAAAAAAAAAAAAA", "006BBBBBBBBBBBBBBB", "006CCCCCCCCCCCCCCC"
    rows = [_request_row(1, opportunity_id=opp_a, status="done", owner="U0SA00001"),   # closed, worked
            _request_row(2, opportunity_id=opp_a),                                      # open: the duplicate
            _request_row(3, opportunity_id=opp_b, status="declined"),                   # closed, nobody worked
            _request_row(4, opportunity_id=opp_c, owner="U0SA00002")]                   # not asked about
    with write_scope(engine) as conn:
        ids = dict(insert_many(conn, Request.__table__, rows, returning=("submission_key", "id")))
    with write_scope(engine) as conn:
        open_rows, worked = repo.opportunities_so_far(conn, [opp_a, opp_b, opp_a, "006ZZZZZZZZZZZZZZZ"])
    assert open_rows == {opp_a: (ids["V0002"], None, "open", "amer", "V0002")}
    assert worked == {opp_a: ("U0SA00001", ids["V0001"])}


def test_home_viewers_read_through_fetch_keep_their_queues_as_a_list(engine):
    with session_scope(engine) as s:
        s.add(HomeViewer(slack_user="U0SA00001", sa_queues=["amer", "emea"], opened_at=NOW))
        s.add(HomeViewer(slack_user="U0AE00001", sa_queues=[], opened_at=NOW))
        # Unsaved objects are flushed first, as a session's own execute does.
        assert sorted(tuple(r) for r in fetch(s, sa.select(HomeViewer.slack_user, HomeViewer.sa_queues))) == [
            ("U0AE00001", []), ("U0SA00001", ["amer", "emea"])]


def test_errors_from_the_driver_are_sqlalchemys_so_callers_tell_a_replay_from_a_refusal(engine):
    with write_scope(engine) as conn:
        insert_many(conn, Request.__table__, [_request_row(1)], returning=("id",))
    with pytest.raises(sa.exc.IntegrityError), write_scope(engine) as conn:  # the same submission key again
        insert_many(conn, Request.__table__, [_request_row(1)], returning=("id",))
    with write_scope(engine) as conn:  # the connection is usable again after the rollback
        assert len(insert_many(conn, Request.__table__, [_request_row(2)], returning=("id",))) == 1


@pytest.mark.postgres
def test_a_connection_postgresql_drops_is_an_operational_error_counted_for_healthz_and_the_next_scope_reconnects(
        pg_url):
    upgrade(pg_url)
    engine = make_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        with pytest.raises(sa.exc.OperationalError) as raised, write_scope(engine) as conn:
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
            with make_engine(pg_url).connect() as admin:
                admin.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
            repo.opportunities_so_far(conn, ["006AAAAAAAAAAAAAAA"])
        assert raised.value.connection_invalidated
        assert "reconnected after 1 lost connection" in connection_history(engine)
        with write_scope(engine) as conn:
            assert repo.opportunities_so_far(conn, ["006AAAAAAAAAAAAAAA"]) == ({}, {})
    finally:
        engine.dispose()
