"""Engine set-up: SQLite tuned for concurrent use, PostgreSQL as is; write intent.

SQLite (SECURITY.md item 17): WAL, synchronous=NORMAL, busy_timeout, foreign keys,
and BEGIN IMMEDIATE for writing transactions. A deferred transaction that reads
first and then writes fails at once with "database is locked" when another writer
committed in between (busy_timeout does not help there), so every transaction that
may write starts IMMEDIATE. Read-only requests (GET/HEAD) start deferred so readers
never wait for writers; the web layer says which by setting the write intent.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

from sqlalchemy import Engine, Select, event, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

_write_intent: ContextVar[bool] = ContextVar("auditapp_write_intent", default=True)


def set_write_intent(writes: bool) -> None:
    """Declare whether transactions begun from now on in this context may write."""
    _write_intent.set(writes)


def intends_to_write() -> bool:
    """Whether transactions begun now in this context may write (see set_write_intent)."""
    return _write_intent.get()


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Within the block, new transactions begin IMMEDIATE (they intend to write)."""
    token = _write_intent.set(True)
    try:
        yield
    finally:
        _write_intent.reset(token)


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """Within the block, new transactions begin deferred (read only; never wait for writers)."""
    token = _write_intent.set(False)
    try:
        yield
    finally:
        _write_intent.reset(token)


def configure_engine(engine: Engine, busy_timeout_ms: int) -> None:
    """Attach the SQLite pragmas and transaction handling; on PostgreSQL turn JIT off."""
    if engine.dialect.name == "postgresql":

        @event.listens_for(engine, "connect")
        def _pg_connect(dbapi_connection, _record):
            # The planner overrates the training status query and spends a second compiling
            # it (JIT) to save milliseconds (measured in bench/training.py).
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET jit = off")
            dbapi_connection.commit()

        return
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's own is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if _write_intent.get() else "BEGIN")


def is_postgres(engine: Engine) -> bool:
    """True when the engine talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


def paginate(session: Session, stmt: Select, page: int, size: int) -> tuple[list, int]:
    """One page (1-based) of an ordered statement's rows, and the total count: the one
    way lists are paged (the count runs over the statement without its ORDER BY)."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    result = session.scalars(stmt.offset((max(page, 1) - 1) * size).limit(size))
    return list(result.unique().all()), total


def migration_revision(session: Session) -> str | None:
    """The Alembic revision the database is at (None before the first migration)."""
    try:
        return session.scalar(text("SELECT version_num FROM alembic_version"))
    except SQLAlchemyError:
        session.rollback()
        return None
