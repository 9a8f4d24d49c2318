"""Evidence: upload into the content-addressed store, link, version, withdraw, purge, verify.

File work (type check, fsync, rename, delete) never happens inside a database
transaction (SECURITY.md item 17), so an upload is two calls: `plan_upload` checks the
request against the database (read only), the caller ends that transaction and
commits the bytes to the store, then `record_upload` writes the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select
from sqlalchemy.orm import Session

from auditapp.errors import InvalidInput, NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import Control, Evidence, EvidenceLink, EvidenceStatus, Role, User
from auditapp.models.types import utcnow
from auditapp.services import audit, inputs
from auditapp.services.filetypes import FileType
from auditapp.storage import EvidenceStore, StoredBlob

MAX_DESCRIPTION = 2000
MAX_REASON = 2000


# Linkable objects -----------------------------------------------------------------
# Each domain registers how to find an object it owns and who owns it, so checks,
# findings and training completions attach evidence the same way controls do.


@dataclass(frozen=True)
class LinkTarget:
    """An object evidence can be attached to, with the people responsible for it."""

    object_type: str
    object_id: str
    label: str
    owner_ids: frozenset[int]


Resolver = Callable[[Session, str], LinkTarget | None]
_RESOLVERS: dict[str, Resolver] = {}
# Per type: a SQL condition "this link's object is owned by user X", for list filters.
_OWNED_BY: dict[str, Callable[[int], object]] = {}


def register_link_type(object_type: str, resolver: Resolver, owned_by) -> None:
    """Let evidence attach to objects of a type (called once per domain at import)."""
    _RESOLVERS[object_type] = resolver
    _OWNED_BY[object_type] = owned_by


def _control_target(session: Session, object_id: str) -> LinkTarget | None:
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


register_link_type("control", _control_target, _control_owned_by)


def link_types() -> list[str]:
    """The object types evidence can be linked to."""
    return sorted(_RESOLVERS)


def parse_link(value: str) -> tuple[str, str]:
    """'control:ORG-01' → ('control', 'ORG-01'); InvalidInput naming the known types."""
    kind, sep, ident = (value or "").strip().partition(":")
    kind = kind.lower()
    if not sep or not ident.strip() or kind not in _RESOLVERS:
        raise inputs.fail(
            "link",
            _l(
                "write the link as TYPE:ID with TYPE one of %(types)s",
                types=", ".join(link_types()),
            ),
        )
    return kind, ident.strip()[:40]


def resolve(session: Session, kind: str, ident: str) -> LinkTarget:
    """The linked object, or NotFound."""
    target = _RESOLVERS[kind](session, ident)
    if target is None:
        raise NotFound(_l("%(kind)s %(id)s was not found", kind=kind, id=ident))
    return target


# Who may see and change evidence ---------------------------------------------------


def _is_user(actor) -> bool:
    return isinstance(actor, User)


def may_attach(actor, target: LinkTarget) -> bool:
    """Admins, the command line and the object's owners may attach evidence to it."""
    return not _is_user(actor) or actor.has_role(Role.ADMIN) or actor.id in target.owner_ids


def can_view(session: Session, actor, item: Evidence) -> bool:
    """Admins see everything; auditors everything not withdrawn; uploaders and the owners of
    a linked object see active items. Everyone else must not learn the item exists."""
    if not _is_user(actor):
        return True
    if actor.has_role(Role.ADMIN):
        return True
    if item.status != EvidenceStatus.ACTIVE.value:
        return False
    if actor.has_role(Role.AUDITOR) or item.uploaded_by_id == actor.id:
        return True
    for link in item.links:
        resolver = _RESOLVERS.get(link.object_type)
        target = resolver(session, link.object_id) if resolver else None
        if target is not None and actor.id in target.owner_ids:
            return True
    return False


def get_visible(session: Session, actor, evidence_id: int) -> Evidence:
    """An evidence item the actor may see, or NotFound (also when it exists but is hidden)."""
    item = session.get(Evidence, evidence_id)
    if item is None or not can_view(session, actor, item):
        raise NotFound(_l("No such evidence."))
    return item


# Upload ------------------------------------------------------------------------------


@dataclass
class UploadPlan:
    """A checked upload request, ready to be recorded once the bytes are stored."""

    targets: list[LinkTarget]
    description: str | None
    valid_until: date | None
    supersedes: Evidence | None = None
    actor_label: str = ""
    actor_id: int | None = None
    errors: dict = field(default_factory=dict)


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
        if not may_attach(actor, target):
            # Attaching to someone else's object: answer as if it did not exist.
            raise NotFound(
                _l("%(kind)s %(id)s was not found", kind=target.object_type, id=target.object_id)
            )
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
        actor_id=actor.id if _is_user(actor) else None,
    )


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
    before = snapshot(item)
    item.status = EvidenceStatus.WITHDRAWN.value
    item.withdrawn_by_id = actor.id if _is_user(actor) else None
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
    """Mark withdrawn items past their retention as purged; returns (id, sha256) of each.

    The caller commits, then deletes the bytes with `delete_unreferenced`, so a failure
    in between leaves an orphan file (reported by verify), never a row without bytes.
    """
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
class VerifyReport:
    """The outcome of re-hashing the store against the evidence rows."""

    checked: int = 0
    missing: list[tuple[int, str]] = field(default_factory=list)
    altered: list[tuple[int, str]] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.missing or self.altered or self.orphaned)


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
    """A SQL condition: evidence this actor may see in lists."""
    if not _is_user(actor) or actor.has_role(Role.ADMIN):
        return None
    active = Evidence.status == EvidenceStatus.ACTIVE.value
    if actor.has_role(Role.AUDITOR):
        return active
    owned = [cond(actor.id) for cond in _OWNED_BY.values()]
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
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(Evidence.uploaded_at.desc(), Evidence.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(rows), total


def for_object(
    session: Session, actor, object_type: str, object_id: str, today: date
) -> list[Evidence]:
    """Current versions of the evidence linked to an object that the actor may see."""
    flt = EvidenceFilter(
        object_type=object_type,
        object_id=object_id,
        include_withdrawn=_is_user(actor) and actor.has_role(Role.ADMIN),
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
