"""The audit trail: append hash-chained events, verify the chain, browse it.

Each entry's hash is SHA-256(previous hash + canonical JSON of the entry), with
sorted keys, UTC ISO times and no floats (SECURITY.md item 19). Appends are
serialized: on SQLite by the write transaction (BEGIN IMMEDIATE), on PostgreSQL by
a transaction-scoped advisory lock; UNIQUE(prev_hash) makes any fork fail loudly.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from auditapp.models import GENESIS_HASH, AuditEvent, User
from auditapp.models.types import utcnow

# Any fixed 64-bit number; every process appending to the chain takes this lock.
_PG_AUDIT_LOCK = 0x41554449545F4348

# Set by the caller (web request, CLI) in session.info; copied into each event.
META_KEY = "audit_meta"


_AS_IS = (str, int, bool, type(None))  # exactly these types (not enums): kept as they are


def _plain(value: Any) -> Any:
    """Turn a value into JSON-safe data without floats (dates ISO, decimals as text)."""
    if type(value) in _AS_IS:  # most values: answered before the isinstance chain (bulk imports)
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(_plain(v) for v in value)
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float | Decimal):
        return str(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def canonical_json(value: Any) -> str:
    """Canonical JSON: sorted keys, no spaces, UTF-8 text, no floats."""
    return json.dumps(_plain(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def entry_hash(prev_hash: str, event: AuditEvent) -> str:
    """The chain hash of an event given the hash before it."""
    entry = {
        "at": event.at.isoformat(),
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "before": event.before_json,
        "after": event.after_json,
        "client_addr": event.client_addr,
        "request_id": event.request_id,
    }
    return hashlib.sha256((prev_hash + canonical_json(entry)).encode()).hexdigest()


def _lock_chain(session: Session) -> None:
    """Serialize appends across processes (SQLite already holds its write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})


def head(session: Session) -> str:
    """The hash of the newest entry (the genesis hash for an empty trail)."""
    last = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    return last or GENESIS_HASH


def actor_label(actor: User | str | None) -> str:
    """How an actor is named in the trail: 'name <email>' or a system label."""
    if actor is None:
        return "system"
    if isinstance(actor, str):
        return actor
    return f"{actor.name} <{actor.email}>"


def record(
    session: Session,
    *,
    actor: User | str | None,
    action: str,
    object_type: str,
    object_id: Any = None,
    before: Any = None,
    after: Any = None,
) -> AuditEvent:
    """Append one event to the chain inside the caller's transaction and flush it."""
    content = _content(
        actor=actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        before=before,
        after=after,
    )
    _lock_chain(session)
    event = AuditEvent(**_linked(head(session), session.info.get(META_KEY) or {}, content))
    session.add(event)
    session.flush()
    return event


def record_many(session: Session, entries: Iterable[dict[str, Any]], batch: int = 2000) -> int:
    """Append many events (each the keyword arguments of `record`) in one go; returns how
    many. Their content is serialized before the chain is locked, the head is read once
    and the rows are inserted a batch per statement, so a bulk import holds the chain
    (which every sign-in appends to) briefly; `record` per event costs a query and a flush.
    """
    contents = [_content(**entry) for entry in entries]
    meta = session.info.get(META_KEY) or {}
    _lock_chain(session)
    prev = head(session)
    rows = []
    for content in contents:
        row = _linked(prev, meta, content)
        prev = row["hash"]
        rows.append(row)
    # Inserted in chain order: ids grow with the chain, as `verify` reads it.
    for start in range(0, len(rows), batch):
        session.execute(insert(AuditEvent.__table__), rows[start : start + batch])
    return len(rows)


def _content(
    *,
    actor: User | str | None,
    action: str,
    object_type: str,
    object_id: Any = None,
    before: Any = None,
    after: Any = None,
) -> dict[str, Any]:
    """An event's own columns: who did what to which object, before and after as JSON."""
    return {
        "actor_id": actor.id if isinstance(actor, User) else None,
        "actor_label": actor_label(actor)[:300],
        "action": action,
        "object_type": object_type,
        "object_id": None if object_id is None else str(object_id),
        "before_json": None if before is None else canonical_json(before),
        "after_json": None if after is None else canonical_json(after),
    }


def _linked(prev: str, meta: dict, content: dict[str, Any]) -> dict[str, Any]:
    """The column values of the event after the one hashed `prev` (stamped now, with the
    request's address and id), its hash included."""
    values = content | {
        "at": utcnow(),
        "client_addr": meta.get("client_addr"),
        "request_id": meta.get("request_id"),
        "prev_hash": prev,
    }
    values["hash"] = entry_hash(prev, SimpleNamespace(**values))
    return values


@dataclass
class ChainReport:
    """The outcome of verifying the chain."""

    count: int
    head: str
    broken_id: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify(session: Session, batch: int = 2000) -> ChainReport:
    """Recompute every hash in order; report the first entry that does not match."""
    prev = GENESIS_HASH
    count = 0
    stmt = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=batch)
    for event in session.scalars(stmt):
        count += 1
        if event.prev_hash != prev:
            return ChainReport(count - 1, prev, event.id, "previous hash does not match")
        if entry_hash(prev, event) != event.hash:
            return ChainReport(count - 1, prev, event.id, "content does not match its hash")
        prev = event.hash
        session.expunge(event)
    return ChainReport(count, prev)


@dataclass
class EventFilter:
    """Filters for browsing the trail; all optional."""

    since: datetime | None = None
    until: datetime | None = None
    actor: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    action: str | None = None


def search(
    session: Session, flt: EventFilter, page: int, page_size: int
) -> tuple[list[AuditEvent], int]:
    """One page of events (newest first) matching the filter, and the total count."""
    stmt = select(AuditEvent)
    if flt.since:
        stmt = stmt.where(AuditEvent.at >= flt.since)
    if flt.until:
        stmt = stmt.where(AuditEvent.at < flt.until)
    if flt.actor:
        stmt = stmt.where(func.lower(AuditEvent.actor_label).contains(flt.actor.lower()))
    if flt.object_type:
        stmt = stmt.where(AuditEvent.object_type == flt.object_type)
    if flt.object_id:
        stmt = stmt.where(AuditEvent.object_id == flt.object_id)
    if flt.action:
        stmt = stmt.where(AuditEvent.action.startswith(flt.action))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(AuditEvent.id.desc()).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return list(rows), total


def distinct_values(session: Session) -> tuple[list[str], list[str]]:
    """The object types and actions present, for the filter menus."""
    types = session.scalars(
        select(AuditEvent.object_type).distinct().order_by(AuditEvent.object_type)
    ).all()
    actions = session.scalars(
        select(AuditEvent.action).distinct().order_by(AuditEvent.action)
    ).all()
    return list(types), list(actions)
