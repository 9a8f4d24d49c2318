"""The snapshot: what the copied database holds (the numbers a manifest records)."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from auditapp.models import AuditEvent, Evidence, EvidenceStatus
from auditapp.services import audit


def readonly_sqlite(path: Path) -> Engine:
    """An engine reading a SQLite file that is never written (nor created) through it."""
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    return sa.create_engine(
        "sqlite://", creator=lambda: sqlite3.connect(uri, uri=True), poolclass=NullPool
    )


# Alembic's own table: it holds the revision, not data, so it does not make a database
# "not empty" (a schema made by `auditapp db upgrade` is still a valid restore target).
ALEMBIC_TABLE = "alembic_version"


@dataclass
class Snapshot:
    """The numbers a manifest records about one database state."""

    revision: str | None
    row_counts: dict[str, int]
    audit_entries: int
    audit_head: str
    evidence: list[str] = field(default_factory=list)  # hashes of the live evidence rows


def row_counts(session: Session) -> dict[str, int]:
    """Rows in every table of the database (the current schema on PostgreSQL)."""
    names = sorted(sa.inspect(session.connection()).get_table_names())
    return {
        name: session.scalar(select(func.count()).select_from(sa.table(name))) or 0
        for name in names
    }


def take_snapshot(session: Session) -> Snapshot:
    counts = row_counts(session)
    revision = None
    if ALEMBIC_TABLE in counts:
        # Several rows only with branched migrations; never rolls back (unlike
        # database.migration_revision), so the snapshot transaction stays usable.
        found = session.scalars(text("SELECT version_num FROM alembic_version")).all()
        revision = ",".join(sorted(found)) or None
    hashes = session.scalars(
        select(Evidence.sha256)
        .where(Evidence.status != EvidenceStatus.PURGED.value)
        .distinct()
        .order_by(Evidence.sha256)
    ).all()
    return Snapshot(
        revision=revision,
        row_counts=counts,
        audit_entries=session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        audit_head=audit.head(session),
        evidence=list(hashes),
    )
