"""The audit trail: append hash-chained events, verify the chain, anchor it, browse it.

Each entry's hash is SHA-256(previous hash + canonical JSON of the entry), with
sorted keys, UTC ISO times and no floats (SECURITY.md item 19). Appends are
serialized: on SQLite by the write transaction (BEGIN IMMEDIATE), on PostgreSQL by
a transaction-scoped advisory lock; UNIQUE(prev_hash) makes any fork fail loudly.

The chain alone cannot show that its newest entries were deleted, or that entries were
rewritten and every hash after them recomputed: anyone who can write the table can do
both. So the trail is anchored outside the database (issue 11 item 4): signed
checkpoints (entry count + head hash + time, HMAC-SHA256 with a key kept in a file
outside the database) are appended to a checkpoint file, logged, and written into every
backup manifest; `verify_anchored` checks the chain against every one of them.
"""

from __future__ import annotations

import enum
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import stat
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.orm import Session

from auditapp.errors import OpsError
from auditapp.models import GENESIS_HASH, AuditEvent, User
from auditapp.models.types import utcnow

log = logging.getLogger(__name__)

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
    """The outcome of verifying the chain.

    `count` entries verified before the first break (all of them when intact), `head` the
    last verified hash; `total` the entries walked and `stored` the hash stored at each
    entry number asked for (only when `verify` was given positions).
    """

    count: int
    head: str
    broken_id: int | None = None
    problem: str | None = None
    total: int = 0
    stored: dict[int, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.broken_id is None


def verify(session: Session, batch: int = 2000, positions: Collection[int] = ()) -> ChainReport:
    """Recompute every hash in order; report the first entry that does not match.

    With `positions` (entry numbers: 1 is the first entry, 0 the genesis hash) the walk goes
    on to the end, past a break, keeping the hash stored at each of them, so checkpoints
    can be compared even with a broken chain.
    """
    wanted = set(positions)
    stored = {0: GENESIS_HASH} if 0 in wanted else {}
    prev, count, broken = GENESIS_HASH, 0, None
    stmt = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=batch)
    for event in session.scalars(stmt):
        count += 1
        if count in wanted:
            stored[count] = event.hash
        if broken is None:
            if event.prev_hash != prev:
                broken = (count - 1, prev, event.id, "previous hash does not match")
            elif entry_hash(prev, event) != event.hash:
                broken = (count - 1, prev, event.id, "content does not match its hash")
            else:
                prev = event.hash
        session.expunge(event)
        if broken is not None and not wanted:
            break
    if broken is None:
        return ChainReport(count, prev, total=count, stored=stored)
    verified, last, broken_id, problem = broken
    return ChainReport(verified, last, broken_id, problem, total=count, stored=stored)


def trail_state(session: Session) -> tuple[int, str]:
    """The entry count and head hash, read in one statement (so from one snapshot)."""
    newest = (
        select(AuditEvent.hash)
        .order_by(AuditEvent.id.desc())
        .limit(1)
        .correlate(None)
        .scalar_subquery()
    )
    count, last = session.execute(select(func.count(AuditEvent.id), newest)).one()
    return count or 0, last or GENESIS_HASH


# Anchoring: the key, signed checkpoints, verification against them --------------------
#
# The key lives in a file outside the database (AUDIT_KEY_FILE, default
# instance/audit.key, 0600), not in SECRET_KEY: rotating SECRET_KEY (which signs
# sessions) must not invalidate years of checkpoints and backups. The file holds one key
# per line; the first signs, the ones below it (retired keys) still verify.

CHECKPOINT_VERSION = 1
REASONS = ("manual", "daily", "backup", "restore")
_KEY_ID_LABEL = b"auditapp audit key id"
_KEY_LINE = re.compile(r"[0-9a-f]{64,128}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")
_KEY_HEADER = (
    "# auditapp audit key (HMAC-SHA256) for checkpoints and backup manifests.\n"
    "# Keep a copy apart from the database and the backups: verifying checkpoints and\n"
    "# restoring a backup need it. The first key signs; keys below it (retired ones)\n"
    "# only verify what they signed.\n"
)


def key_id(key: bytes) -> str:
    """A short public name of a key (it tells keys apart without revealing them)."""
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]


def _mac(key: bytes, payload: Any) -> str:
    return hmac.new(key, canonical_json(payload).encode(), hashlib.sha256).hexdigest()


class AuditKeys:
    """The anchor's HMAC keys: the first signs, every one verifies (a rotated-out key keeps
    what it signed verifiable)."""

    def __init__(self, keys: list[bytes]):
        if not keys:
            raise ValueError("at least one key is needed")
        self._keys = {key_id(key): key for key in keys}
        self.current_id = key_id(keys[0])

    def sign(self, payload: Any) -> str:
        """The HMAC (hex) of the canonical JSON of `payload` with the current key."""
        return _mac(self._keys[self.current_id], payload)

    def check(self, payload: Any, signed_by: Any, signature: Any) -> str | None:
        """None when `signature` is `signed_by`'s HMAC of `payload`, else what is wrong."""
        key = self._keys.get(signed_by) if isinstance(signed_by, str) else None
        if key is None:
            return f"signed with key {signed_by}, which is not in the audit key file"
        if not isinstance(signature, str) or not hmac.compare_digest(
            _mac(key, payload).encode(), signature.encode()
        ):
            return "the signature does not verify (forged or edited after signing)"
        return None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: at `at` the trail held `entries` entries ending in `head`.

    `prev` is the signature of the record before it in the checkpoint file ("" for the
    first), so a record deleted from the middle of the file is noticed. A "restore"
    checkpoint says the trail was replaced by a restored backup: older checkpoints
    recording more entries than it are superseded.
    """

    at: datetime
    entries: int
    head: str
    reason: str
    key_id: str
    prev: str
    signature: str
    source: str = field(default="", compare=False)  # where it was read, for messages

    def payload(self) -> dict:
        """What the signature covers."""
        return {
            "v": CHECKPOINT_VERSION,
            "at": _iso(self.at),
            "entries": self.entries,
            "head": self.head,
            "reason": self.reason,
            "key_id": self.key_id,
            "prev": self.prev,
        }

    def to_json(self) -> dict:
        """The record as written (payload and signature)."""
        return self.payload() | {"signature": self.signature}

    def line(self) -> str:
        """The record as one line of JSON."""
        return canonical_json(self.to_json())

    @property
    def when(self) -> str:
        return self.at.strftime("%Y-%m-%d %H:%M:%S UTC")

    @classmethod
    def from_json(cls, data: Any, source: str = "") -> Checkpoint:
        """A checkpoint from its JSON record; ValueError naming the first bad field."""
        if not isinstance(data, dict) or data.get("v") != CHECKPOINT_VERSION:
            raise ValueError(f"not a version {CHECKPOINT_VERSION} checkpoint record")
        entries = data.get("entries")
        if not isinstance(entries, int) or isinstance(entries, bool) or entries < 0:
            raise ValueError("entries: expected a count")
        for name, pattern in (("head", _HEX64), ("key_id", _KEY_ID), ("signature", _HEX64)):
            if not isinstance(data.get(name), str) or not pattern.fullmatch(data[name]):
                raise ValueError(f"{name}: expected hex digits")
        prev = data.get("prev")
        if prev != "" and not (isinstance(prev, str) and _HEX64.fullmatch(prev)):
            raise ValueError("prev: expected the previous record's signature")
        if data.get("reason") not in REASONS:
            raise ValueError(f"reason: expected one of {', '.join(REASONS)}")
        try:
            at = datetime.fromisoformat(data["at"])
        except (KeyError, TypeError, ValueError):
            raise ValueError("at: expected an ISO time") from None
        if at.tzinfo is None:
            raise ValueError("at: expected a time with its UTC offset")
        return cls(
            at.astimezone(UTC),
            entries,
            data["head"],
            data["reason"],
            data["key_id"],
            prev,
            data["signature"],
            source,
        )


def sign_checkpoint(
    keys: AuditKeys, *, entries: int, head: str, reason: str, prev: str = "", at=None
) -> Checkpoint:
    """A checkpoint of the given state, signed with the current key."""
    unsigned = Checkpoint(
        (at or utcnow()).astimezone(UTC).replace(microsecond=0),
        entries,
        head,
        reason,
        keys.current_id,
        prev,
        "",
    )
    return replace(unsigned, signature=keys.sign(unsigned.payload()))


def parse_checkpoints(lines: Iterable[str], where: str) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoint records in some text (one per line: a checkpoint file, lines copied
    from the app log or printed by `audit checkpoint`), and a problem per unreadable line.
    Lines without a JSON object are skipped (log lines around them)."""
    found, problems = [], []
    for number, line in enumerate(lines, 1):
        start = line.find("{")
        if start < 0:
            continue
        source = f"{where} line {number}"
        try:
            found.append(Checkpoint.from_json(json.loads(line[start:]), source))
        except (json.JSONDecodeError, ValueError) as exc:
            problems.append(f"{source}: not a checkpoint ({exc})")
    return found, problems


def _links(points: list[Checkpoint]) -> list[str]:
    """Problems with the chain of records of one checkpoint file (each names the one before)."""
    problems, before = [], ""
    for point in points:
        if point.prev != before:
            problems.append(
                f"{point.source}: does not follow the record before it (a checkpoint was "
                f"removed from the file, or the file was edited)"
            )
        before = point.signature
    return problems


@dataclass(frozen=True)
class Anchor:
    """Where the anchor lives, outside the database: the key file and the checkpoint file."""

    key_file: Path
    checkpoint_file: Path

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Anchor:
        """The anchor of an app's configuration (AUDIT_KEY_FILE, AUDIT_CHECKPOINT_FILE)."""
        return cls(Path(config["AUDIT_KEY_FILE"]), Path(config["AUDIT_CHECKPOINT_FILE"]))

    def create_key(self) -> bool:
        """Create the key file (mode 0600, a random 256-bit key) when there is none; True
        when it was created."""
        self.key_file.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(_KEY_HEADER + secrets.token_hex(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return True

    def keys(self) -> AuditKeys | None:
        """The keys of the key file; None when there is no key file."""
        try:
            content = self.key_file.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise OpsError(f"cannot read the audit key file {self.key_file}: {exc}") from None
        found = []
        for number, line in enumerate(content.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if not _KEY_LINE.fullmatch(line):
                raise OpsError(
                    f"{self.key_file} line {number}: expected a key of 64 to 128 hex digits"
                )
            found.append(bytes.fromhex(line))
        if not found:
            raise OpsError(f"the audit key file {self.key_file} holds no key")
        return AuditKeys(found)

    def key_file_mode(self) -> int | None:
        """The permission bits of the key file (None when missing)."""
        try:
            return stat.S_IMODE(self.key_file.stat().st_mode)
        except FileNotFoundError:
            return None

    def signing_keys(self) -> AuditKeys:
        """The keys to sign with, creating the key file on first use. Refused when
        checkpoints exist but their key is gone: a new key would hide the loss."""
        keys = self.keys()
        if keys is None:
            if self.checkpoint_file.exists():
                raise OpsError(
                    f"the audit key file {self.key_file} is missing, but "
                    f"{self.checkpoint_file} holds checkpoints signed with it; put the key "
                    f"back from your copy before writing checkpoints or backups"
                )
            self.create_key()
            keys = self.keys()
        assert keys is not None  # created just above
        return keys

    def checkpoints(self) -> tuple[list[Checkpoint], list[str]]:
        """The instance's checkpoints and the problems of its file (unreadable lines,
        removed records); no file means no checkpoints yet."""
        try:
            content = self.checkpoint_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return [], []
        except (OSError, UnicodeDecodeError) as exc:
            return [], [f"cannot read the checkpoint file {self.checkpoint_file}: {exc}"]
        points, problems = parse_checkpoints(content.splitlines(), str(self.checkpoint_file))
        return points, problems + _links(points)

    def append(self, keys: AuditKeys, *, entries: int, head: str, reason: str) -> Checkpoint:
        """Sign a checkpoint of the given state, append it to the checkpoint file (created
        0600) under an exclusive lock, and log it; returns it."""
        self.checkpoint_file.parent.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW
        with os.fdopen(os.open(self.checkpoint_file, flags, 0o600), "r+b") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)  # released when the file is closed
            content = f.read().decode("utf-8", errors="replace")
            points, _problems = parse_checkpoints(content.splitlines(), "")
            prev = points[-1].signature if points else ""
            point = sign_checkpoint(keys, entries=entries, head=head, reason=reason, prev=prev)
            lead = "\n" if content and not content.endswith("\n") else ""
            f.write((lead + point.line() + "\n").encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        log.info("audit checkpoint %s", point.line())
        return point


def write_checkpoint(session: Session, anchor: Anchor, reason: str) -> Checkpoint:
    """Anchor the trail as it is now: a signed checkpoint appended to the checkpoint file
    and logged. Reads only (the caller ends the transaction)."""
    keys = anchor.signing_keys()
    entries, last = trail_state(session)
    return anchor.append(keys, entries=entries, head=last, reason=reason)


@dataclass
class AnchorReport:
    """The chain recomputed, and compared with every checkpoint."""

    chain: ChainReport
    key_id: str | None
    checked: list[Checkpoint]  # signature-verified checkpoints compared with the trail
    superseded: int  # checkpoints replaced by a later "restore" checkpoint
    problems: list[str]

    @property
    def ok(self) -> bool:
        return self.chain.ok and not self.problems

    @property
    def newest(self) -> Checkpoint | None:
        return self.checked[-1] if self.checked else None  # kept in time order

    def lines(self) -> list[str]:
        """One line per problem (the chain break first); or the summary when all agree."""
        chain = self.chain
        found = []
        if not chain.ok:
            found.append(
                f"audit chain broken at entry {chain.broken_id}: {chain.problem} "
                f"({chain.count} entries verified before it)"
            )
        if found or self.problems:
            return found + self.problems
        found.append(f"audit chain intact: {chain.count} entries, head {chain.head}")
        newest = self.newest
        if newest is None:
            found.append(
                "not anchored: no checkpoint yet (`auditapp audit checkpoint` writes one; "
                "the scheduler writes one daily)"
            )
        else:
            found.append(
                f"anchored: newest checkpoint of {newest.when} ({newest.entries} entries, "
                f"head {newest.head}) verified with key {newest.key_id}; "
                f"{len(self.checked)} checkpoint(s) checked"
                + (f", {self.superseded} superseded by a restore" if self.superseded else "")
            )
        return found


def _in_force(points: list[Checkpoint]) -> tuple[list[Checkpoint], int]:
    """The checkpoints that still bind the trail: a restore supersedes older checkpoints
    that recorded more entries than it restored."""
    active: list[Checkpoint] = []
    superseded = 0
    for point in sorted(points, key=lambda p: p.at):
        if point.reason == "restore":
            kept = [p for p in active if p.entries <= point.entries]
            superseded += len(active) - len(kept)
            active = kept
        active.append(point)
    return active, superseded


def verify_anchored(
    session: Session,
    keys: AuditKeys | None,
    points: list[Checkpoint],
    problems: Iterable[str] = (),
    *,
    subject: str = "the trail",
) -> AnchorReport:
    """Recompute the chain and compare it with every checkpoint whose signature verifies:
    fewer entries than a checkpoint recorded is truncation, another hash at its position
    is rewriting (or re-chaining); a checkpoint whose signature fails is forged."""
    found = list(problems)
    valid = []
    if points and keys is None:
        found.append(f"{len(points)} checkpoint(s) cannot be verified: there is no audit key file")
    seen = set()
    for point in points if keys else []:
        if point.signature in seen:  # the same record from two places (file and a copy)
            continue
        seen.add(point.signature)
        wrong = keys.check(point.payload(), point.key_id, point.signature)
        if wrong:
            found.append(f"checkpoint of {point.when} ({point.source}): {wrong}")
        else:
            valid.append(point)
    active, superseded = _in_force(valid)
    chain = verify(session, positions={p.entries for p in active})
    for point in active:
        if chain.total < point.entries:
            found.append(
                f"{subject} ends at entry {chain.total} but the checkpoint of {point.when} "
                f"recorded {point.entries} entries ({point.source}): entries were deleted"
            )
        elif chain.stored[point.entries] != point.head:
            found.append(
                f"entry {point.entries} of {subject} has hash {chain.stored[point.entries]} but "
                f"the checkpoint of {point.when} recorded {point.head} ({point.source}): "
                f"entries up to it were rewritten or re-chained"
            )
    return AnchorReport(chain, keys.current_id if keys else None, active, superseded, found)


def check_instance(session: Session, anchor: Anchor, extra: Iterable[Path] = ()) -> AnchorReport:
    """`audit verify`: the chain against the instance's checkpoint file and any other
    checkpoint files given (copies kept elsewhere, lines taken from the log)."""
    keys = anchor.keys()
    points, problems = anchor.checkpoints()
    for path in extra:
        try:
            content = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"cannot read {path}: {exc}")
            continue
        more, wrong = parse_checkpoints(content.splitlines(), str(path))
        points += more
        problems += wrong
    return verify_anchored(session, keys, points, problems)


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
