"""Engine and session scopes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session

CONNECT_TIMEOUT = 10  # seconds to wait for PostgreSQL to answer a new connection


class DatabaseUnavailable(Exception):
    """DATABASE_URL can't be used; the message is one line for an operator (no password in it)."""


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
    if url.startswith("postgresql"):
        # A host that drops packets would otherwise hold start-up for the OS's TCP timeout (minutes).
        kwargs.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT})
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
def write_scope(engine: Engine) -> Iterator[sa.Connection]:
    """One transaction on a bare connection, for Core statements where the ORM's session would cost more
    than the work (the submission's ack path): commit on success, roll back on any error."""
    with getattr(engine, "info_writer_lock", None) or nullcontext(), engine.begin() as conn:
        yield conn


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


def insert_many(conn: sa.Connection | Session, table: sa.Table, rows: Sequence[Mapping[str, Any]], *,
                returning: Sequence[str] = (), skip_conflicts_on: str | None = None) -> list[sa.Row]:
    """INSERT these rows (each with the same keys) in one statement; the rows of `returning` columns for
    those inserted. `skip_conflicts_on`: a unique column; a row whose value is taken is skipped.

    On PostgreSQL the rows travel as one JSON parameter (`INSERT ... SELECT ... FROM
    json_populate_recordset`), so the statement's text is the same however many rows there are: psycopg
    converts it once and the server prepares it once per connection. A multi-row VALUES list has a
    parameter per column and row, and psycopg re-parses any statement of more than 50 parameters on
    every execution (`psycopg._queries.MAX_CACHED_STATEMENT_PARAMS`), which cost more CPU than anything
    else on the submission's ack path. The statement runs on psycopg's own connection (see `fetch`).
    Elsewhere (SQLite), SQLAlchemy's multi-row INSERT.

    Datetimes must be aware (as the UTC columns require) and are stored as UTC."""
    if not rows:
        return []
    if isinstance(conn, Session):
        conn = conn.connection()
    columns = tuple(rows[0])
    postgres = conn.dialect.name == "postgresql"
    key = (table.name, columns, tuple(returning), skip_conflicts_on, postgres)
    stmt = _INSERT_MANY.get(key)
    if stmt is None:
        stmt = _INSERT_MANY[key] = _insert_many_statement(conn.dialect, table, columns, returning,
                                                          skip_conflicts_on, postgres=postgres)
    if postgres:
        return _on_driver(conn, stmt, (json.dumps(rows, default=_json_value, separators=(",", ":")),))
    result = conn.execute(stmt, list(rows))
    return list(result) if returning else []


_INSERT_MANY: dict[tuple, Any] = {}


def fetch(conn: sa.Connection | Session, stmt: sa.Executable, params: Mapping[str, Any] | None = None,
          ) -> list[Any]:
    """The rows of a SELECT (or of a statement's RETURNING), for the submission's ack path.

    On PostgreSQL the statement, compiled once, runs on psycopg's own connection inside `conn`'s
    transaction, prepared on the server: SQLAlchemy's per-execution work (execution context, parameter
    processing, result wrapping) cost more CPU than psycopg's own, on every statement of the ack. So the
    parameters must be plain values psycopg adapts itself (strings, numbers, lists of them), the rows are
    plain tuples, and a column's values are what psycopg gives (JSON decoded, timestamps aware). Errors are
    SQLAlchemy's, as from `conn.execute`. Elsewhere (SQLite), `conn.execute`. In a session, what it
    holds unsaved is flushed first, as its own `execute` would."""
    if isinstance(conn, Session):
        if conn.autoflush:
            conn.flush()
        conn = conn.connection()
    if conn.dialect.name != "postgresql":
        return list(conn.execute(stmt, params))
    cached = _COMPILED.get(id(stmt))
    if cached is None or cached[0] is not stmt:
        cached = _COMPILED[id(stmt)] = (stmt, str(stmt.compile(dialect=conn.dialect)))
    return _on_driver(conn, cached[1], params or {})


_COMPILED: dict[int, tuple[Any, str]] = {}  # id(statement) -> (statement, its PostgreSQL text)


def _on_driver(conn: sa.Connection, sql: str, params: Any) -> list[Any]:
    """One statement on the driver's connection (see `fetch`): its rows, none for a statement without."""
    driver = conn.connection.dbapi_connection
    try:
        cursor = driver.execute(sql, params, prepare=True)  # type: ignore[union-attr]
        return cursor.fetchall() if cursor.description is not None else []
    except conn.dialect.loaded_dbapi.Error as e:
        lost = conn.dialect.is_disconnect(e, driver, None)
        if lost:  # as SQLAlchemy does: the pool drops the connection; and /healthz tells of it
            disconnects = getattr(conn.engine, "info_disconnects", None)
            if disconnects is not None:
                disconnects.record(e)
            conn.invalidate(e)
        raise sa.exc.DBAPIError.instance(sql, params, e, conn.dialect.loaded_dbapi.Error,
                                         connection_invalidated=lost, dialect=conn.dialect) from e


def _insert_many_statement(dialect: sa.Dialect, table: sa.Table, columns: tuple[str, ...],
                           returning: Sequence[str], skip_conflicts_on: str | None, *, postgres: bool) -> Any:
    unknown = [c for c in (*columns, *returning, *([skip_conflicts_on] if skip_conflicts_on else []))
               if c not in table.c]
    if unknown:
        raise ValueError(f"insert_many into {table.name}: no column {', '.join(unknown)}")
    omitted_defaults = [c.name for c in table.columns
                        if c.name not in columns and c.default is not None and not c.primary_key]
    if omitted_defaults:  # json_populate_recordset would store NULL where SQLAlchemy applies the default
        raise ValueError(f"insert_many into {table.name}: give {', '.join(omitted_defaults)} (they have defaults)")
    if not postgres:
        stmt: Any = sqlite.insert(table)
        if skip_conflicts_on:
            stmt = stmt.on_conflict_do_nothing(index_elements=[skip_conflicts_on])
        return stmt.returning(*(table.c[c] for c in returning)) if returning else stmt
    q = dialect.identifier_preparer.quote
    names = ", ".join(q(c) for c in columns)
    # Only the table's own names, quoted, go into the text; the rows are the one bound parameter.
    sql = (f"INSERT INTO {q(table.name)} ({names}) SELECT {names} "  # noqa: S608
           f"FROM json_populate_recordset(NULL::{q(table.name)}, CAST(%s AS json))")
    if skip_conflicts_on:
        sql += f" ON CONFLICT ({q(skip_conflicts_on)}) DO NOTHING"
    if returning:
        sql += " RETURNING " + ", ".join(q(c) for c in returning)
    return sql  # run by `_on_driver`, psycopg's placeholder


def _json_value(value: Any) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} can not be stored as JSON")


def ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


def where(url: str) -> str:
    """The database a URL names, for messages: host, port and name; never the password."""
    try:
        u = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return "DATABASE_URL"
    if u.get_backend_name() == "sqlite":
        return f"SQLite file {u.database}" if u.database and u.database != ":memory:" else "SQLite in memory"
    host = u.host or "localhost"
    return f"{host}:{u.port or 5432}" + (f", database {u.database}" if u.database else "")


# What the driver said -> what the operator should check.
_HINTS = (  # first match wins
    (("refused",), "is PostgreSQL running there, and is the port right?"),
    (("resolve host", "name or service not known", "nodename nor servname", "could not translate host"),
     "is the host name in DATABASE_URL right?"),
    (("timeout", "timed out"), "is the host reachable from here (firewall, VPN, security group)?"),
    (("password authentication failed", "no password supplied", "authentication failed", 'role "'),
     "check the user name and password in DATABASE_URL"),
    (("does not exist",), "create the database (createdb), or fix the name in DATABASE_URL"),
    (("unable to open database file",), "does the file's directory exist, and may this user write to it?"),
    (("ssl",), "check the sslmode in DATABASE_URL against what the server requires"),
)


def explain(url: str, error: BaseException) -> str:
    """One readable line for a database error: which database, what went wrong, what to check."""
    if isinstance(error, sa.exc.NoSuchModuleError):
        scheme = url.split(":", 1)[0]
        return (f"DATABASE_URL names an unknown database type '{scheme}': use postgresql://user:password@host:5432/"
                "name or sqlite:///./triage.db")
    if isinstance(error, (sa.exc.ArgumentError, ValueError)):
        return ("DATABASE_URL is not a database URL: use postgresql://user:password@host:5432/name or "
                "sqlite:///./triage.db")
    orig = getattr(error, "orig", None) or error
    lines = [ln.strip() for ln in str(orig).splitlines() if ln.strip()]
    detail = lines[0] if lines else orig.__class__.__name__
    for ln in lines:  # psycopg puts the server's reason on the line that says FATAL, when there is one
        if ln.startswith("FATAL:") or "failed:" in ln:
            detail = ln
    detail = detail.replace("connection failed: ", "")
    try:
        password = sa.engine.make_url(url).password
    except sa.exc.ArgumentError:
        password = None
    if password:
        detail = detail.replace(str(password), "***")
    low = detail.lower()
    hint = next((h for needles, h in _HINTS if any(n in low for n in needles)),
                "check DATABASE_URL and that the database server is up")
    return f"cannot use the database at {where(url)}: {detail[:300]} -- {hint}"


def check_database(url: str) -> None:
    """Connect once; raise DatabaseUnavailable with a one-line explanation when that fails."""
    try:
        engine = make_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ValueError) as e:
        raise DatabaseUnavailable(explain(url, e)) from None
    try:
        ping(engine)
    except sa.exc.DBAPIError as e:
        raise DatabaseUnavailable(explain(url, e)) from None
    finally:
        engine.dispose()
