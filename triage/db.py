"""Engine and session scopes."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session


def make_engine(url: str, **kwargs) -> Engine:
    if url.startswith("sqlite"):
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # WAL lets readers run beside the writer; foreign keys are off by default in SQLite.
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @sa.event.listens_for(engine, "begin")
        def _begin(conn):
            # A deferred transaction that reads then writes fails at once with SQLITE_BUSY when another
            # writer got there first (busy_timeout does not apply to that upgrade); taking the write lock
            # up front makes concurrent writers wait their turn instead. Read-only scopes begin deferred,
            # so they never queue behind writers (WAL). See sqlite.org/lang_transaction.html
            read_only = conn.get_execution_options().get("triage_read_only")
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        # SQLite's busy handler waits for the write lock by sleeping (up to 100 ms a time), so writers in
        # this process also queue on a lock of ours, which hands over at once.
        engine.info_writer_lock = threading.RLock()  # type: ignore[attr-defined]
        return engine
    # pre_ping: a pooled connection the server dropped (restart, failover, idle timeout) is tested and
    # replaced before use, so the app reconnects by itself; a lost connection is remembered for /healthz.
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 20)
    engine = sa.create_engine(url, **kwargs)
    engine.info_disconnects = Disconnects()  # type: ignore[attr-defined]

    @sa.event.listens_for(engine, "handle_error")
    def _lost(context) -> None:
        if context.is_disconnect:
            engine.info_disconnects.record(context.original_exception)  # type: ignore[attr-defined]

    return engine


@dataclass
class Disconnects:
    """Connections the database dropped since start-up: how many, and the last one."""

    count: int = 0
    last_at: datetime | None = None
    last_error: str = ""

    def record(self, error: BaseException | None) -> None:
        self.count += 1
        self.last_at = datetime.now(UTC)
        self.last_error = error.__class__.__name__ if error is not None else "disconnect"


def connection_history(engine: Engine) -> str:
    """For /healthz: '' when no connection was ever lost, else when it last happened (the app reconnected
    by itself if this is read from a working connection)."""
    d: Disconnects | None = getattr(engine, "info_disconnects", None)
    if d is None or not d.count:
        return ""
    return (f"; reconnected after {d.count} lost connection(s), the last at {d.last_at:%Y-%m-%d %H:%M:%S} UTC "
            f"({d.last_error})")


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with getattr(engine, "info_writer_lock", None) or nullcontext(), Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A transaction that only reads: on SQLite it takes no write lock and waits for no writer."""
    # Closing (not rolling back) ends the transaction without expiring what was loaded, so the objects
    # stay readable after the scope.
    with Session(_read_only(engine), expire_on_commit=False) as session:
        yield session


def _read_only(engine: Engine) -> Engine:
    """The engine with the read-only flag, built once per engine (it sits on the ack path)."""
    cached = getattr(engine, "info_read_only", None)
    if cached is None:
        cached = engine.execution_options(triage_read_only=True)
        engine.info_read_only = cached  # type: ignore[attr-defined]
    return cached


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))
