"""An evidence item's life after upload: withdrawal, downloads recorded, purge at the end
of retention, leftovers of interrupted uploads, and re-hashing the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from auditapp import access, database
from auditapp.errors import Forbidden, InvalidInput
from auditapp.i18n import lazy_text as _l
from auditapp.models import (
    Evidence,
    EvidenceStatus,
)
from auditapp.models.types import utcnow
from auditapp.services import audit, inputs
from auditapp.storage import EvidenceStore

MAX_REASON = 2000
# Leftovers of uploads a crash interrupted (temp files, bytes no row refers to) are
# removed once this old: an upload in progress touches its temp file on every write and
# writes its row a moment after committing the bytes, so a day is far beyond either.
LEFTOVER_AGE = timedelta(hours=24)

# Life cycle -------------------------------------------------------------------------


def snapshot(item: Evidence) -> dict:
    """The audited fields of an evidence item."""
    return {
        "sha256": item.sha256,
        "size": item.size,
        "media_type": item.media_type,
        "filename": item.filename,
        "description": item.description,
        "valid_until": item.valid_until,
        "retention_until": item.retention_until,
        "version": item.version,
        "supersedes": item.supersedes_id,
        "status": item.status,
        "links": sorted(f"{lk.object_type}:{lk.object_id}" for lk in item.links),
    }


def withdraw(session: Session, actor, item: Evidence, reason: str | None) -> Evidence:
    """Withdraw an item (admin): hidden from new reports, bytes kept until retention ends."""
    text = inputs.text(reason, "reason", max_len=MAX_REASON, multiline=True)
    if item.status != EvidenceStatus.ACTIVE.value:
        raise InvalidInput(
            _l("this evidence is already withdrawn"), {"reason": _l("already withdrawn")}
        )
    if not access.may_withdraw_evidence(actor, item):
        raise Forbidden(_l("Only an admin may withdraw evidence."))
    before = snapshot(item)
    item.status = EvidenceStatus.WITHDRAWN.value
    item.withdrawn_by_id = access.person_id(actor)
    item.withdrawn_at = utcnow()
    item.withdraw_reason = text
    audit.record(
        session,
        actor=actor,
        action="evidence.withdraw",
        object_type="evidence",
        object_id=item.id,
        before=before,
        after=snapshot(item) | {"reason": text},
    )
    return item


def record_download(session: Session, actor, item: Evidence, *, inline: bool) -> None:
    """Record who fetched which evidence (it may itself contain personal data)."""
    audit.record(
        session,
        actor=actor,
        action="evidence.preview" if inline else "evidence.download",
        object_type="evidence",
        object_id=item.id,
        after={"sha256": item.sha256, "filename": item.filename},
    )


def mark_purged(session: Session, actor, today: date) -> list[tuple[int, str]]:
    """Mark withdrawn items past their retention as purged; returns (id, sha256) of each
    (`purge_expired` commits this, then deletes the bytes)."""
    items = session.scalars(
        select(Evidence).where(
            Evidence.status == EvidenceStatus.WITHDRAWN.value, Evidence.retention_until < today
        )
    ).all()
    purged = []
    for item in items:
        item.status = EvidenceStatus.PURGED.value
        item.purged_at = utcnow()
        purged.append((item.id, item.sha256))
        audit.record(
            session,
            actor=actor,
            action="evidence.purge",
            object_type="evidence",
            object_id=item.id,
            after={
                "sha256": item.sha256,
                "filename": item.filename,
                "retention_until": item.retention_until,
            },
        )
    return purged


def delete_unreferenced(session: Session, store: EvidenceStore, hashes: list[str]) -> int:
    """Delete the bytes of these hashes unless a non-purged item still uses them."""
    deleted = 0
    for sha in sorted(set(hashes)):
        in_use = session.scalar(
            select(
                exists().where(
                    Evidence.sha256 == sha, Evidence.status != EvidenceStatus.PURGED.value
                )
            )
        )
        if not in_use and store.delete(sha):
            deleted += 1
    return deleted


@dataclass
class PurgeResult:
    """What a retention purge did: the (id, sha256) of each purged item, files deleted."""

    purged: list[tuple[int, str]]
    deleted: int


def purge_expired(session: Session, store: EvidenceStore, actor, today: date) -> PurgeResult:
    """Purge withdrawn items past their retention (the command line and the scheduled job).

    This commits, unlike other services: the rows must say "purged" (recorded in the audit
    trail) before their bytes are deleted, so a failure in between leaves bytes no row
    needs (removed by `remove_leftovers`), never a kept item whose bytes are gone.
    """
    with database.writing():
        purged = mark_purged(session, actor, today)
        session.commit()
    deleted = delete_unreferenced(session, store, [sha for _id, sha in purged])
    session.rollback()  # end the read transaction of the checks above
    return PurgeResult(purged, deleted)


@dataclass
class LeftoverResult:
    """What the clean-up of interrupted uploads removed."""

    temp_files: int
    orphans: list[str]


def remove_leftovers(
    session: Session, store: EvidenceStore, actor, *, older_than: timedelta = LEFTOVER_AGE
) -> LeftoverResult:
    """Remove what crashed uploads and purges leave behind, once older than `older_than`:
    temp files of uploads never finished, and stored bytes no evidence row refers to (an
    upload stores the bytes before it writes the row). Recorded; the caller commits.

    The referenced hashes are read first and that transaction ends before any file is
    deleted. An upload in progress is safe: its temp file and its freshly committed (or,
    for bytes already there, freshly touched) blob are younger than the bound.
    """
    removed_temp = store.cleanup_temp(older_than.total_seconds())
    with database.reading():
        referenced = set(
            session.scalars(
                select(Evidence.sha256)
                .where(Evidence.status != EvidenceStatus.PURGED.value)
                .distinct()
            )
        )
        session.rollback()
    orphans = store.remove_orphans(referenced, older_than.total_seconds())
    if orphans:
        with database.writing():
            audit.record(
                session,
                actor=actor,
                action="evidence.orphans_removed",
                object_type="evidence",
                after={"count": len(orphans), "sha256": orphans[:100]},
            )
    return LeftoverResult(removed_temp, orphans)


@dataclass
class VerifyReport:
    """The outcome of re-hashing the store against the evidence rows.

    Damage (a row's bytes missing or altered) makes it not ok. Orphans (bytes no row
    refers to, left by an interrupted upload or purge) are only a warning: no evidence is
    lost, and the clean-up job removes them once they are a day old.
    """

    checked: int = 0
    missing: list[tuple[int, str]] = field(default_factory=list)
    altered: list[tuple[int, str]] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No damage (orphans allowed)."""
        return not (self.missing or self.altered)


def verify(session: Session, store: EvidenceStore) -> VerifyReport:
    """Re-hash every stored file; report rows whose bytes are missing or altered, and files
    no evidence row refers to."""
    report = VerifyReport()
    rows = session.execute(
        select(func.min(Evidence.id), Evidence.sha256)
        .where(Evidence.status != EvidenceStatus.PURGED.value)
        .group_by(Evidence.sha256)
        .order_by(Evidence.sha256)
    ).all()
    known = set()
    for evidence_id, sha in rows:
        known.add(sha)
        outcome = store.verify(sha)
        report.checked += 1
        if outcome == "missing":
            report.missing.append((evidence_id, sha))
        elif outcome == "altered":
            report.altered.append((evidence_id, sha))
    # Bytes no live item refers to (an interrupted purge or a failed upload left them).
    report.orphaned = [sha for sha in store.iter_hashes() if sha not in known]
    return report
