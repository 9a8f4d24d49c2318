"""Evidence: upload into the content-addressed store, link, version, withdraw, purge, verify.

File work (type check, fsync, link, delete) never happens inside a database
transaction (SECURITY.md item 17). An upload is `plan_upload` (checks the request
against the database, reads only) and then `store_upload`, the one upload flow every
caller uses: it ends the planning transaction, checks and commits the bytes, then
writes the rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import BinaryIO

from sqlalchemy import String, and_, cast, exists, func, or_, select
from sqlalchemy.orm import Session

from auditapp import access, database
from auditapp.errors import Forbidden, InvalidInput, NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import (
    Check,
    CheckStatus,
    Completion,
    Control,
    Evidence,
    EvidenceLink,
    EvidenceStatus,
    Finding,
    FindingStatus,
    User,
)
from auditapp.models.types import utcnow
from auditapp.services import audit, filetypes, inputs
from auditapp.services.filetypes import FileType
from auditapp.storage import CHUNK_SIZE, EmptyBlob, EvidenceStore, PendingBlob, StoredBlob

MAX_DESCRIPTION = 2000
MAX_REASON = 2000
# Leftovers of uploads a crash interrupted (temp files, bytes no row refers to) are
# removed once this old: an upload in progress touches its temp file on every write and
# writes its row a moment after committing the bytes, so a day is far beyond either.
LEFTOVER_AGE = timedelta(hours=24)


# Linkable objects -----------------------------------------------------------------
# One explicit table of the object types evidence links to: how to find an object and
# who is responsible for it, and the same as a SQL condition for lists. Every type is
# here, so the web, the command line and the scheduler know the same types whatever
# modules they imported.


@dataclass(frozen=True)
class LinkTarget:
    """An object evidence can be attached to, with the people responsible for it.

    `locked` says why nothing more may be attached (a message), or is None: a check
    once attested and a finding once its closure was submitted keep the evidence that
    was attested or reviewed (access.may_attach).
    """

    object_type: str
    object_id: str
    label: str
    owner_ids: frozenset[int]
    locked: object = None


@dataclass(frozen=True)
class LinkType:
    """How to resolve an object of one type, and "owned by user X" as a SQL condition on
    EvidenceLink (for the library's visibility filter)."""

    resolve: Callable[..., LinkTarget | None]  # (session, object_id, *, for_update=False)
    owned_by: Callable[[int], object]


def _control_target(session: Session, object_id: str, *, for_update=False) -> LinkTarget | None:
    control = session.scalar(select(Control).where(Control.code == object_id.upper()))
    if control is None:
        return None
    owners = frozenset({control.owner_id} if control.owner_id else set())
    return LinkTarget("control", control.code, f"{control.code} {control.title_ja}", owners)


def _control_owned_by(user_id: int):
    return and_(
        EvidenceLink.object_type == "control",
        EvidenceLink.object_id.in_(select(Control.code).where(Control.owner_id == user_id)),
    )


def _check_target(session: Session, object_id: str, *, for_update=False) -> LinkTarget | None:
    check = _get(session, Check, object_id, for_update)
    if check is None:
        return None
    owners = {check.control.owner_id} if check.control.owner_id else set()
    label = f"{check.control.code} {check.period_key}"
    locked = None
    if check.status in (CheckStatus.ATTESTED, CheckStatus.ACCEPTED):
        locked = _l(
            "check %(label)s has been attested: its evidence is locked with the attestation "
            "(attach new evidence to the control or to a later check)",
            label=label,
        )
    return LinkTarget("check", str(check.id), label, frozenset(owners), locked)


def _check_owned_by(user_id: int):
    owned = (
        select(cast(Check.id, String))
        .join(Control, Control.id == Check.control_id)
        .where(Control.owner_id == user_id)
    )
    return and_(EvidenceLink.object_type == "check", EvidenceLink.object_id.in_(owned))


def _finding_target(session: Session, object_id: str, *, for_update=False) -> LinkTarget | None:
    finding = _get(session, Finding, object_id, for_update)
    if finding is None:
        return None
    owners = {finding.owner_id} | (
        {finding.control.owner_id} if finding.control.owner_id else set()
    )
    label = f"{finding.control.code} #{finding.id}"
    locked = None
    if finding.status != FindingStatus.OPEN:
        locked = _l(
            "finding %(label)s was submitted for closure: its evidence is locked "
            "(more can be attached if the closure is returned)",
            label=label,
        )
    return LinkTarget("finding", str(finding.id), label, frozenset(owners), locked)


def _finding_owned_by(user_id: int):
    owned = select(cast(Finding.id, String)).where(Finding.owner_id == user_id)
    return and_(EvidenceLink.object_type == "finding", EvidenceLink.object_id.in_(owned))


def _completion_target(session: Session, object_id: str, *, for_update=False) -> LinkTarget | None:
    row = _get(session, Completion, object_id, for_update)
    if row is None:
        return None
    return LinkTarget(
        "completion",
        str(row.id),
        f"{row.course.code} {row.user.name} {row.completed_on}",
        frozenset({row.user_id}),
    )


def _completion_owned_by(user_id: int):
    owned = select(cast(Completion.id, String)).where(Completion.user_id == user_id)
    return and_(EvidenceLink.object_type == "completion", EvidenceLink.object_id.in_(owned))


def _get(session: Session, model, object_id: str, for_update: bool):
    """The row with this integer key, or None (also for text or numbers past any key).

    `for_update` re-reads the row and locks it until the transaction ends (PostgreSQL;
    SQLite's writing transaction already excludes other writers), so an attestation or a
    closure cannot land between the lock check and the evidence row.
    """
    if not object_id.isdigit() or len(object_id) > 18:
        return None
    key = int(object_id)
    if not for_update:
        return session.get(model, key)
    # The row alone (its eager joins cannot be locked on PostgreSQL), then fresh values.
    session.execute(select(model.id).where(model.id == key).with_for_update())
    return session.get(model, key, populate_existing=True)


LINK_TYPES: dict[str, LinkType] = {
    "control": LinkType(_control_target, _control_owned_by),
    "check": LinkType(_check_target, _check_owned_by),
    "finding": LinkType(_finding_target, _finding_owned_by),
    "completion": LinkType(_completion_target, _completion_owned_by),
}


def link_types() -> list[str]:
    """The object types evidence can be linked to."""
    return sorted(LINK_TYPES)


def parse_link(value: str) -> tuple[str, str]:
    """'control:ORG-01' → ('control', 'ORG-01'); InvalidInput naming the known types."""
    kind, sep, ident = (value or "").strip().partition(":")
    kind = kind.lower()
    if not sep or not ident.strip() or kind not in LINK_TYPES:
        raise inputs.fail(
            "link",
            _l(
                "write the link as TYPE:ID with TYPE one of %(types)s",
                types=", ".join(link_types()),
            ),
        )
    return kind, ident.strip()[:40]


def resolve(session: Session, kind: str, ident: str, *, for_update: bool = False) -> LinkTarget:
    """The linked object, or NotFound; `for_update` locks its row (see `_get`)."""
    target = LINK_TYPES[kind].resolve(session, ident, for_update=for_update)
    if target is None:
        raise NotFound(_l("%(kind)s %(id)s was not found", kind=kind, id=ident))
    return target


def link_targets(session: Session, item: Evidence) -> Iterator[LinkTarget]:
    """The objects an item is linked to that still exist (resolved one by one, lazily)."""
    for link in item.links:
        link_type = LINK_TYPES.get(link.object_type)
        target = link_type.resolve(session, link.object_id) if link_type else None
        if target is not None:
            yield target


# Who may see evidence (the rules are in access.py) ------------------------------------


def can_view(session: Session, actor, item: Evidence) -> bool:
    """access.can_view_evidence, with the item's links resolved only when needed."""
    return access.can_view_evidence(actor, item, link_targets(session, item))


def get_visible(session: Session, actor, evidence_id: int) -> Evidence:
    """An evidence item the actor may see, or NotFound (also when it exists but is hidden)."""
    item = session.get(Evidence, evidence_id)
    if item is None or not can_view(session, actor, item):
        raise NotFound(_l("No such evidence."))
    return item


# Upload ------------------------------------------------------------------------------


@dataclass
class UploadPlan:
    """A checked upload request, ready to be recorded once the bytes are stored.

    `record_target`, when given, writes the object the file is evidence for in the same
    transaction as the evidence row and returns it (a training completion recorded with
    its certificate: the completion does not exist while the bytes are checked).
    """

    targets: list[LinkTarget]
    description: str | None
    valid_until: date | None
    supersedes: Evidence | None = None
    actor_label: str = ""
    actor_id: int | None = None
    errors: dict = field(default_factory=dict)
    record_target: Callable[[Session], LinkTarget] | None = None


def plan_upload(
    session: Session,
    actor,
    *,
    links: list[str],
    description: str | None,
    valid_until: str | None,
    supersedes_id: int | None,
    today: date,
) -> UploadPlan:
    """Check an upload request (links, permission, description, validity, version); reads only."""
    errors: dict = {}
    targets: list[LinkTarget] = []
    supersedes = None
    if supersedes_id:
        supersedes = get_visible(session, actor, supersedes_id)
        if supersedes.status != EvidenceStatus.ACTIVE.value or supersedes.superseded_at:
            errors["supersedes"] = _l("only the current version of an active item can be replaced")
        targets = [resolve(session, lk.object_type, lk.object_id) for lk in supersedes.links]
    for value in links:
        if not value:
            continue
        try:
            kind, ident = parse_link(value)
            target = resolve(session, kind, ident)
        except (InvalidInput, NotFound) as exc:
            errors["link"] = exc.errors.get("link", exc.message)
            continue
        if all(
            (t.object_type, t.object_id) != (target.object_type, target.object_id) for t in targets
        ):
            targets.append(target)
    if not targets and "link" not in errors:
        errors["link"] = _l("evidence must be linked to something (e.g. control:ORG-01)")
    for target in targets:
        if not access.is_responsible_for(actor, target):
            # Attaching to someone else's object: answer as if it did not exist.
            raise NotFound(
                _l("%(kind)s %(id)s was not found", kind=target.object_type, id=target.object_id)
            )
        if not access.may_attach(actor, target):
            errors["link"] = target.locked
    try:
        text = inputs.text(
            description, "description", max_len=MAX_DESCRIPTION, required=False, multiline=True
        )
    except InvalidInput as exc:
        errors.update(exc.errors)
        text = None
    try:
        until = inputs.parse_date(valid_until, "valid_until")
        if until is not None and until < today:
            errors["valid_until"] = _l("must not be in the past")
    except InvalidInput as exc:
        errors.update(exc.errors)
        until = None
    if errors:
        raise InvalidInput.from_errors(errors)
    return UploadPlan(
        targets=targets,
        description=text,
        valid_until=until,
        supersedes=supersedes,
        actor_label=audit.actor_label(actor),
        actor_id=access.person_id(actor),
    )


def store_upload(
    session: Session,
    store: EvidenceStore,
    actor,
    plan: UploadPlan,
    stream: BinaryIO,
    filename: str,
    *,
    today: date,
    retention_years: int,
) -> Evidence:
    """The one upload flow (web, training certificates, command line, tests): check the
    bytes' type, commit them to the store, write the evidence rows. The caller commits.

    `stream` is a PendingBlob of this store (the web streams the body into one) or any
    binary file, copied into one here. The order matters:
    1. The planning transaction ends first (rolled back: planning only reads), so no
       database transaction is open during file work. Type checks, fsync and link may
       wait on a slow disk; inside a transaction that wait would hold SQLite's write lock
       (every other writer gets "database is locked") or a PostgreSQL snapshot.
    2. The bytes are stored before any row names them, so a crash in between leaves
       bytes that no row refers to (removed by `remove_leftovers`, reported as a warning
       by `verify`), never a row whose file is missing.
    3. The rows are written in a new transaction that begins as a writing one.
    """
    session.rollback()
    name = filetypes.safe_filename(filename)
    blob, ftype = _store_bytes(store, stream, name)
    with database.writing():
        if plan.record_target is not None:
            plan.targets = [*plan.targets, plan.record_target(session)]
        return record_upload(
            session,
            actor,
            plan,
            blob,
            ftype,
            name,
            retention_years=retention_years,
            today=today,
        )


def _store_bytes(store: EvidenceStore, stream: BinaryIO, name: str) -> tuple[StoredBlob, FileType]:
    """Type-check the bytes (by content, the name agreeing) and commit them to the store;
    nothing is kept when the check fails."""
    if isinstance(stream, PendingBlob):
        pending = stream
    else:
        pending = store.begin()
        try:
            shutil.copyfileobj(stream, pending, CHUNK_SIZE)
        except BaseException:
            store.abort(pending)
            raise
    try:
        ftype = filetypes.check(pending, name)
        return store.commit(pending), ftype
    except EmptyBlob as exc:
        raise inputs.fail("file", _l("the file is empty")) from exc
    finally:
        store.abort(pending)  # a no-op once committed; otherwise the temp file goes


def record_upload(
    session: Session,
    actor,
    plan: UploadPlan,
    blob: StoredBlob,
    ftype: FileType,
    filename: str,
    *,
    retention_years: int,
    today: date,
) -> Evidence:
    """Write the evidence row and its links for stored bytes; a new version supersedes."""
    item = Evidence(
        sha256=blob.sha256,
        size=blob.size,
        media_type=ftype.media_type,
        filename=filename,
        description=plan.description,
        uploaded_by_id=plan.actor_id,
        uploaded_by_label=plan.actor_label[:300],
        uploaded_at=utcnow(),
        valid_until=plan.valid_until,
        retention_until=_add_years(today, retention_years),
        status=EvidenceStatus.ACTIVE.value,
        version=1,
    )
    old = plan.supersedes
    if old is not None:
        old = session.get(Evidence, old.id)  # re-read: the caller's transaction ended
        if old is None or old.superseded_at is not None:
            raise InvalidInput(
                _l("only the current version of an active item can be replaced"),
                {"supersedes": _l("was replaced meanwhile")},
            )
        item.supersedes_id = old.id
        item.lineage_id = old.lineage_id or old.id
        item.version = old.version + 1
        old.superseded_at = utcnow()
    # The plan was checked in an earlier transaction: a check may have been attested (or
    # a closure submitted) meanwhile, so each object is read again, locked, before linking.
    for target in plan.targets:
        current = resolve(session, target.object_type, target.object_id, for_update=True)
        if current.locked:
            raise InvalidInput.from_errors({"link": current.locked})
    item.links = [
        EvidenceLink(object_type=t.object_type, object_id=t.object_id) for t in plan.targets
    ]
    session.add(item)
    session.flush()
    if item.lineage_id is None:
        item.lineage_id = item.id
    audit.record(
        session,
        actor=actor,
        action="evidence.upload",
        object_type="evidence",
        object_id=item.id,
        after=snapshot(item),
    )
    return item


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


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


# Life cycle -------------------------------------------------------------------------


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


# Lists ------------------------------------------------------------------------------


@dataclass
class EvidenceFilter:
    """Filters for the evidence library; all optional."""

    q: str = ""
    media_type: str = ""
    uploader_id: int | None = None
    since: datetime | None = None  # uploaded at or after
    until: datetime | None = None  # uploaded before
    object_type: str = ""
    object_id: str = ""
    expiring_within_days: int | None = None
    include_withdrawn: bool = False
    include_old_versions: bool = False


def _visible(actor):
    """access.can_view_evidence as a SQL condition, for lists (None: everything)."""
    if access.sees_all_evidence(actor):
        return None
    active = Evidence.status == EvidenceStatus.ACTIVE.value
    if access.is_auditor(actor):
        return active
    owned = [link_type.owned_by(actor.id) for link_type in LINK_TYPES.values()]
    linked = exists().where(EvidenceLink.evidence_id == Evidence.id, or_(*owned))
    return and_(active, or_(Evidence.uploaded_by_id == actor.id, linked))


def search(
    session: Session, actor, flt: EvidenceFilter, page: int, page_size: int, today: date
) -> tuple[list[Evidence], int]:
    """One page of evidence the actor may see, newest first, and the total."""
    stmt = select(Evidence)
    visible = _visible(actor)
    if visible is not None:
        stmt = stmt.where(visible)
    if not flt.include_withdrawn:
        stmt = stmt.where(Evidence.status == EvidenceStatus.ACTIVE.value)
    if not flt.include_old_versions:
        stmt = stmt.where(Evidence.superseded_at.is_(None))
    if flt.q:
        like = f"%{flt.q.strip().lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(Evidence.filename).like(like),
                func.lower(Evidence.description).like(like),
                Evidence.sha256 == flt.q.strip().lower(),
            )
        )
    if flt.media_type:
        stmt = stmt.where(Evidence.media_type == flt.media_type)
    if flt.uploader_id:
        stmt = stmt.where(Evidence.uploaded_by_id == flt.uploader_id)
    if flt.since:
        stmt = stmt.where(Evidence.uploaded_at >= flt.since)
    if flt.until:
        stmt = stmt.where(Evidence.uploaded_at < flt.until)
    if flt.object_type:
        cond = EvidenceLink.object_type == flt.object_type
        if flt.object_id:
            cond = and_(
                cond,
                EvidenceLink.object_id == flt.object_id.upper()
                if flt.object_type == "control"
                else EvidenceLink.object_id == flt.object_id,
            )
        stmt = stmt.where(exists().where(EvidenceLink.evidence_id == Evidence.id, cond))
    if flt.expiring_within_days is not None:
        stmt = stmt.where(
            Evidence.valid_until.is_not(None),
            Evidence.valid_until <= today + timedelta(days=flt.expiring_within_days),
        )
    return database.paginate(
        session, stmt.order_by(Evidence.uploaded_at.desc(), Evidence.id.desc()), page, page_size
    )


def for_object(
    session: Session, actor, object_type: str, object_id: str, today: date
) -> list[Evidence]:
    """Current versions of the evidence linked to an object that the actor may see."""
    flt = EvidenceFilter(
        object_type=object_type,
        object_id=object_id,
        include_withdrawn=access.is_admin(actor),
    )
    rows, _total = search(session, actor, flt, 1, 500, today)
    return rows


def history(session: Session, item: Evidence) -> list[Evidence]:
    """Every version of an item, newest first."""
    return list(
        session.scalars(
            select(Evidence)
            .where(Evidence.lineage_id == item.lineage_id)
            .order_by(Evidence.version.desc())
        )
    )


def uploaders(session: Session) -> list[User]:
    """People who uploaded evidence, for the library's filter."""
    return list(
        session.scalars(
            select(User)
            .where(User.id.in_(select(Evidence.uploaded_by_id).distinct()))
            .order_by(User.name)
        )
    )
