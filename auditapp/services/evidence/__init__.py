"""Evidence: upload into the content-addressed store, link, version, withdraw, purge, verify.

File work (type check, fsync, link, delete) never happens inside a database
transaction (SECURITY.md item 17). An upload is `plan_upload` (checks the request
against the database, reads only) and then `store_upload`, the one upload flow every
caller uses: it ends the planning transaction, checks and commits the bytes, then
writes the rows.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import BinaryIO

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from auditapp import access, database
from auditapp.errors import InvalidInput, NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import (
    Evidence,
    EvidenceLink,
    EvidenceStatus,
    User,
)
from auditapp.models.types import utcnow
from auditapp.services import audit, filetypes, inputs
from auditapp.services.evidence.lifecycle import (  # noqa: F401 (the package's names)
    LEFTOVER_AGE,
    LeftoverResult,
    PurgeResult,
    VerifyReport,
    delete_unreferenced,
    mark_purged,
    purge_expired,
    record_download,
    remove_leftovers,
    snapshot,
    verify,
    withdraw,
)
from auditapp.services.evidence.links import (  # noqa: F401 (the package's names)
    LINK_TYPES,
    LinkTarget,
    LinkType,
    link_targets,
    link_types,
    parse_link,
    resolve,
)
from auditapp.services.filetypes import FileType
from auditapp.storage import CHUNK_SIZE, EmptyBlob, EvidenceStore, PendingBlob, StoredBlob

MAX_DESCRIPTION = 2000


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
