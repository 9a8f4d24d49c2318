"""Departments: create, rename, list, find by code or name."""

from __future__ import annotations

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from auditapp.errors import Conflict, InvalidInput, NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import Department, User
from auditapp.services import audit, inputs


def snapshot(dept: Department) -> dict:
    """The audited fields of a department."""
    return {"code": dept.code, "name": dept.name, "name_en": dept.name_en, "active": dept.active}


def get(session: Session, dept_id: int) -> Department:
    """A department by id, or NotFound."""
    dept = session.get(Department, dept_id)
    if dept is None:
        raise NotFound(_l("No such department."))
    return dept


def find(session: Session, code_or_name: str) -> Department | None:
    """A department by its code or its (Japanese or English) name, case-insensitively."""
    key = (code_or_name or "").strip().lower()
    if not key:
        return None
    return session.scalar(
        select(Department).where(
            or_(
                func.lower(Department.code) == key,
                func.lower(Department.name) == key,
                func.lower(Department.name_en) == key,
            )
        )
    )


def _validated(session: Session, data: dict, current: Department | None) -> dict:
    code = inputs.text(data.get("code"), "code", max_len=40)
    name = inputs.text(data.get("name"), "name", max_len=120)
    name_en = inputs.text(data.get("name_en"), "name_en", max_len=120, required=False)
    for field, value in (("code", code), ("name", name)):
        column = getattr(Department, field)
        other = session.scalar(select(Department).where(func.lower(column) == value.lower()))
        if other is not None and other is not current:
            raise Conflict(f"{field}: {value!r}", {field: _l("is already used")})
    return {"code": code, "name": name, "name_en": name_en}


def create(session: Session, actor, data: dict) -> Department:
    """Create a department from form-like data (code, name, name_en)."""
    dept = Department(**_validated(session, data, None), active=True)
    session.add(dept)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="department.create",
        object_type="department",
        object_id=dept.id,
        after=snapshot(dept),
    )
    return dept


def update(session: Session, actor, dept: Department, data: dict) -> Department:
    """Rename a department or change its code; active may be toggled."""
    before = snapshot(dept)
    values = _validated(session, data, dept)
    for key, value in values.items():
        setattr(dept, key, value)
    if "active" in data:
        active = bool(data["active"])
        if not active and session.scalar(
            select(func.count()).where(User.department_id == dept.id, User.active.is_(True))
        ):
            raise InvalidInput(
                _l("A department with active members cannot be deactivated."),
                {"active": _l("has active members")},
            )
        dept.active = active
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="department.update",
        object_type="department",
        object_id=dept.id,
        before=before,
        after=snapshot(dept),
    )
    return dept


def list_all(session: Session, *, include_inactive: bool = True) -> list[tuple[Department, int]]:
    """Every department with its number of active members, by code."""
    members = (
        select(func.count())
        .where(User.department_id == Department.id, User.active.is_(True))
        .scalar_subquery()
    )
    stmt = select(Department, members).order_by(Department.code)
    if not include_inactive:
        stmt = stmt.where(Department.active.is_(True))
    return [(d, n) for d, n in session.execute(stmt).all()]
