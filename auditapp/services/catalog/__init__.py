"""The control catalog in the database: sync from controls/, the organization's choices, queries.

The files' format lives in the package's modules: `files` (load_catalog and what it
returns), `rules` (what a control must look like) and `yaml_lines` (YAML with lines).

Sync is idempotent (a second run changes nothing), all-or-nothing (an invalid catalog
writes nothing), and never deletes: a control gone from the files is retired and
keeps its history. Every change is in the audit trail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from auditapp import access
from auditapp.errors import InvalidInput, NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import (
    Control,
    ControlStatus,
    ControlVersion,
    OrgSetting,
    Profile,
    Role,
    User,
    UserRole,
)
from auditapp.models.types import utcnow
from auditapp.services import audit, inputs
from auditapp.services.catalog.files import (
    CATEGORIES,
    FREQUENCIES,
    Catalog,
    ControlDef,
    load_catalog,
)

_CATEGORY_ORDER = {c.id: c.order for c in CATEGORIES}
PROFILE_KEY = "profile"
CATALOG_VERSION_KEY = "catalog_version"
MAX_JUSTIFICATION = 2000


class CatalogInvalid(InvalidInput):
    """The catalog files have problems; nothing was synced."""

    def __init__(self, catalog: Catalog):
        super().__init__(f"the catalog has {len(catalog.errors)} problem(s); nothing was synced")
        self.catalog = catalog


@dataclass
class SyncResult:
    """What a sync did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    unchanged: int = 0
    version: str = ""

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.updated) + len(self.retired) + len(self.restored)


def _canonical(content: dict) -> str:
    return audit.canonical_json(content)


def sync(session: Session, actor, path: str | Path) -> SyncResult:
    """Bring the database's catalog in line with the files at `path`; raises CatalogInvalid."""
    catalog = load_catalog(path)
    if not catalog.ok:
        raise CatalogInvalid(catalog)
    result = SyncResult(version=catalog.version)
    existing = {c.code: c for c in session.scalars(select(Control))}
    run = _SyncRun(session, actor, catalog.version, utcnow(), result)
    for position, definition in enumerate(catalog.controls):
        run.control(existing.pop(definition.id, None), definition, position)
    for control in existing.values():
        if control.active:
            run.retire(control)
    if get_setting(session, CATALOG_VERSION_KEY) != catalog.version:
        _set_setting(session, actor, CATALOG_VERSION_KEY, catalog.version)
    session.flush()
    return result


@dataclass
class _SyncRun:
    """One sync's context: who syncs, which catalog version, when, and what it did."""

    session: Session
    actor: object
    catalog_version: str
    now: datetime
    result: SyncResult

    def control(self, control: Control | None, definition: ControlDef, position: int) -> None:
        """Add, update or restore one control from its definition (or only note its place)."""
        session, result, now = self.session, self.result, self.now
        digest = definition.content_hash()
        if control is None:
            control = Control(
                code=definition.id, version=1, status=ControlStatus.ACTIVE.value, applicable=True
            )
            session.add(control)
            result.added.append(definition.id)
            action, before = "control.add", None
        elif control.content_hash != digest:
            result.updated.append(definition.id)
            action = "control.update"
            before = {"version": control.version, "content_hash": control.content_hash}
            control.version += 1
        elif not control.active:
            result.restored.append(definition.id)
            action, before = "control.restore", {"status": control.status}
        else:
            if control.position != position or control.source_file != definition.source_file:
                control.position = position
                control.source_file = definition.source_file
            result.unchanged += 1
            return
        _apply_definition(control, definition, position, digest, now)
        session.flush()
        if action != "control.restore":
            session.add(
                ControlVersion(
                    control_id=control.id,
                    version=control.version,
                    content_hash=digest,
                    content_json=control.content_json,
                    catalog_version=self.catalog_version,
                    synced_at=now,
                )
            )
        audit.record(
            session,
            actor=self.actor,
            action=action,
            object_type="control",
            object_id=control.code,
            before=before,
            after={
                "version": control.version,
                "content_hash": digest,
                "source_file": definition.source_file,
            },
        )

    def retire(self, control: Control) -> None:
        """A control gone from the files: retired, never deleted (its history stays)."""
        control.status = ControlStatus.RETIRED.value
        control.retired_at = self.now
        self.result.retired.append(control.code)
        audit.record(
            self.session,
            actor=self.actor,
            action="control.retire",
            object_type="control",
            object_id=control.code,
            before={"status": "active"},
            after={"status": "retired"},
        )


def _apply_definition(
    control: Control, definition: ControlDef, position: int, digest: str, now: datetime
) -> None:
    """Copy a definition's content into the control and make it active."""
    control.category = definition.category
    control.position = position
    control.title_ja = definition.title.ja
    control.title_en = definition.title.en
    control.frequency = definition.frequency
    control.evidence_required = definition.evidence_required
    control.content_json = _canonical(definition.to_dict())
    control.content_hash = digest
    control.source_file = definition.source_file
    control.status = ControlStatus.ACTIVE.value
    control.retired_at = None
    control.synced_at = now


def get_setting(session: Session, key: str) -> str | None:
    """An organization setting's value, or None."""
    row = session.get(OrgSetting, key)
    return row.value if row else None


def _set_setting(session: Session, actor, key: str, value: str) -> None:
    row = session.get(OrgSetting, key)
    before = row.value if row else None
    if row is None:
        session.add(OrgSetting(key=key, value=value))
    else:
        row.value = value
    audit.record(
        session,
        actor=actor,
        action="setting.update",
        object_type="setting",
        object_id=key,
        before={"value": before},
        after={"value": value},
    )


def profile(session: Session) -> Profile:
    """The organization's profile (standard unless set to SME)."""
    return Profile(get_setting(session, PROFILE_KEY) or Profile.STANDARD.value)


def set_profile(session: Session, actor, value: str) -> Profile:
    """Choose standard or SME (中小規模事業者) methods for the whole organization."""
    try:
        chosen = Profile(value)
    except ValueError as exc:
        raise inputs.fail("profile", _l("choose standard or sme")) from exc
    if chosen != profile(session):
        _set_setting(session, actor, PROFILE_KEY, chosen.value)
    return chosen


def get(session: Session, code: str) -> Control:
    """A control by its id (e.g. ORG-01), or NotFound."""
    control = session.scalar(select(Control).where(Control.code == (code or "").upper()))
    if control is None:
        raise NotFound(_l("No such control."))
    return control


def _snapshot(control: Control) -> dict:
    return {
        "owner": control.owner.email if control.owner else None,
        "frequency_override": control.frequency_override,
        "applicable": control.applicable,
        "na_justification": control.na_justification,
    }


def update_settings(
    session: Session,
    actor,
    control: Control,
    *,
    owner_email: str | None,
    frequency_override: str | None,
    applicable: bool,
    justification: str | None,
) -> Control:
    """Set a control's owner (a manager), frequency override and applicability (SoA).

    Marking a control not applicable needs a justification; it is recorded with who
    decided and when.
    """
    errors: dict = {}
    owner = None
    if owner_email:
        owner = session.scalar(select(User).where(User.email == owner_email.strip().lower()))
        if owner is None or not owner.active:
            errors["owner"] = _l("no active person with that email")
        elif not access.may_own_controls(owner):
            errors["owner"] = _l("the owner must hold the manager role")
    override = (frequency_override or "").strip() or None
    if override is not None and override not in FREQUENCIES:
        errors["frequency_override"] = _l("unknown frequency")
    try:
        text = inputs.text(
            justification,
            "na_justification",
            max_len=MAX_JUSTIFICATION,
            required=not applicable,
            multiline=True,
        )
    except InvalidInput as exc:
        errors.update(exc.errors)
        text = None
    if not applicable and not errors.get("na_justification") and not text:
        errors["na_justification"] = _l("is required")
    if errors:
        raise InvalidInput.from_errors(errors)
    before = _snapshot(control)
    if owner is not None and control.checks_from is None:
        control.checks_from = utcnow().date()  # checks start with the period in progress
    control.owner = owner
    control.frequency_override = override
    if applicable != control.applicable or (not applicable and text != control.na_justification):
        control.na_decided_by = actor if isinstance(actor, User) else None
        control.na_decided_at = utcnow()
    control.applicable = applicable
    control.na_justification = None if applicable else text
    session.flush()
    after = _snapshot(control)
    if after != before:
        audit.record(
            session,
            actor=actor,
            action="control.settings",
            object_type="control",
            object_id=control.code,
            before=before,
            after=after,
        )
    return control


@dataclass
class ControlFilter:
    """Filters for the catalog list; all optional."""

    q: str = ""
    category: str = ""
    owner_id: int | None = None
    unowned: bool = False
    applicability: str = ""  # "", "applicable", "na"
    include_retired: bool = False


def search(session: Session, flt: ControlFilter) -> list[Control]:
    """Controls matching the filter, in policy order (search covers ja and en text)."""
    stmt = select(Control)
    if not flt.include_retired:
        stmt = stmt.where(Control.status == ControlStatus.ACTIVE.value)
    if flt.q:
        like = f"%{flt.q.strip().lower()}%"
        stmt = stmt.where(
            or_(func.lower(Control.content_json).like(like), func.lower(Control.code).like(like))
        )
    if flt.category:
        stmt = stmt.where(Control.category == flt.category)
    if flt.owner_id:
        stmt = stmt.where(Control.owner_id == flt.owner_id)
    if flt.unowned:
        stmt = stmt.where(Control.owner_id.is_(None), Control.applicable.is_(True))
    if flt.applicability == "applicable":
        stmt = stmt.where(Control.applicable.is_(True))
    elif flt.applicability == "na":
        stmt = stmt.where(Control.applicable.is_(False))
    rows = session.scalars(stmt).all()
    return sorted(rows, key=lambda c: (_CATEGORY_ORDER.get(c.category, 99), c.position, c.code))


def category_counts(session: Session) -> dict[str, dict[str, int]]:
    """Per category: active controls, not applicable ones, applicable ones without owner."""
    na = case((Control.applicable.is_(False), 1), else_=0)
    unowned = case((Control.applicable.is_(True) & Control.owner_id.is_(None), 1), else_=0)
    rows = session.execute(
        select(Control.category, func.count(), func.sum(na), func.sum(unowned))
        .where(Control.status == ControlStatus.ACTIVE.value)
        .group_by(Control.category)
    ).all()
    found = {cat: {"total": t, "na": int(n or 0), "unowned": int(u or 0)} for cat, t, n, u in rows}
    return {c.id: found.get(c.id, {"total": 0, "na": 0, "unowned": 0}) for c in CATEGORIES}


def unowned_count(session: Session) -> int:
    """Applicable active controls that nobody owns (flagged on the admin's home page)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Control)
            .where(
                Control.status == ControlStatus.ACTIVE.value,
                Control.applicable.is_(True),
                Control.owner_id.is_(None),
            )
        )
        or 0
    )


def versions(session: Session, control: Control) -> list[ControlVersion]:
    """The content history of a control, newest first."""
    return list(
        session.scalars(
            select(ControlVersion)
            .where(ControlVersion.control_id == control.id)
            .order_by(ControlVersion.version.desc())
        )
    )


def managers(session: Session) -> list[User]:
    """Active people holding the manager role (candidate owners), by name."""
    return list(
        session.scalars(
            select(User)
            .join(UserRole)
            .where(UserRole.role == Role.MANAGER.value, User.active.is_(True))
            .order_by(User.name)
        )
    )


def content_of_version(version: ControlVersion) -> dict:
    """The content of a historical version."""
    return json.loads(version.content_json)
