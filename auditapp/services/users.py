"""People: create, edit, roles, deactivate, search."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from auditapp.errors import Conflict, InvalidInput, NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import Department, Role, User, UserRole
from auditapp.services import audit, auth, departments, inputs, sessions

LANGUAGES = ["ja", "en"]


def snapshot(user: User) -> dict:
    """The audited fields of a user (never the password hash)."""
    return fields_snapshot(UserFields.of(user), active=user.active)


def fields_snapshot(fields: UserFields, *, active: bool) -> dict:
    """The audited fields of a user with these values (what `snapshot` records)."""
    return {
        "employee_id": fields.employee_id,
        "name": fields.name,
        "email": fields.email,
        "department": fields.department.code if fields.department else None,
        "roles": sorted(r.value for r in fields.roles),
        "active": active,
        "hired_on": fields.hired_on,
        "language": fields.language,
    }


@dataclass
class UserFields:
    """Validated values for a user."""

    employee_id: str
    name: str
    email: str
    department: Department | None
    roles: set[Role]
    hired_on: date | None
    language: str | None

    @classmethod
    def of(cls, user: User) -> UserFields:
        """A user's current values."""
        return cls(
            employee_id=user.employee_id,
            name=user.name,
            email=user.email,
            department=user.department,
            roles=user.roles,
            hired_on=user.hired_on,
            language=user.language,
        )


class Person(Protocol):
    """What validation needs to know of another person: who it is."""

    id: int
    employee_id: str


class Lookup(Protocol):
    """What validation looks up: a department by code or name, people by email and id.

    The default asks the database each time; a bulk import passes one loaded once.
    """

    def department(self, code_or_name: str) -> Department | None: ...

    def person_by_email(self, email: str) -> Person | None: ...

    def person_by_employee_id(self, employee_id: str) -> Person | None: ...


@dataclass
class _DatabaseLookup:
    """Lookups by query (one person at a time: forms and the CLI)."""

    session: Session

    def department(self, code_or_name: str) -> Department | None:
        return departments.find(self.session, code_or_name)

    def person_by_email(self, email: str) -> User | None:
        return self.session.scalar(select(User).where(User.email == email))

    def person_by_employee_id(self, employee_id: str) -> User | None:
        return self.session.scalar(select(User).where(User.employee_id == employee_id))


def validate(
    session: Session, data: dict, current: Person | None = None, *, lookup: Lookup | None = None
) -> UserFields:
    """Check every field of form-like data; raise InvalidInput naming all bad fields."""
    lookup = lookup or _DatabaseLookup(session)
    errors: dict[str, str] = {}
    values: dict = {}
    checks = {
        "employee_id": lambda v: inputs.text(v, "employee_id", max_len=40),
        "name": lambda v: inputs.text(v, "name", max_len=120),
        "email": inputs.email,
        "roles": inputs.roles,
        "hired_on": lambda v: inputs.parse_date(v, "hired_on"),
        "language": lambda v: inputs.language(v, LANGUAGES),
    }
    for field, check in checks.items():
        try:
            values[field] = check(data.get(field))
        except InvalidInput as exc:
            errors.update(exc.errors)
    dept = None
    dept_key = (data.get("department") or "").strip()
    if dept_key:
        dept = lookup.department(dept_key)
        if dept is None:
            errors["department"] = _l("unknown department %(value)s", value=repr(dept_key))
    if "email" in values:
        other = lookup.person_by_email(values["email"])
        if other is not None and not _same(other, current):
            errors["email"] = _l(
                "%(email)s is already used by %(other)s",
                email=values["email"],
                other=other.employee_id,
            )
    if "employee_id" in values:
        other = lookup.person_by_employee_id(values["employee_id"])
        if other is not None and not _same(other, current):
            errors["employee_id"] = _l("%(value)s is already used", value=values["employee_id"])
    if errors:
        raise InvalidInput.from_errors(errors)
    return UserFields(department=dept, **values)


def _same(other: Person, current: Person | None) -> bool:
    """True when the person found is the one being edited."""
    return current is not None and other.id == current.id


def _apply(user: User, fields: UserFields) -> None:
    user.employee_id = fields.employee_id
    user.name = fields.name
    user.email = fields.email
    user.department = fields.department
    user.hired_on = fields.hired_on
    user.language = fields.language
    user.role_rows = [UserRole(role=r.value) for r in sorted(fields.roles)]


def create(
    session: Session,
    actor,
    data: dict,
    *,
    password: str | None = None,
    password_hash: str | None = None,
) -> tuple[User, str | None]:
    """Create a user; returns it with its initial password (generated unless given).

    A generated password must be changed at the first sign-in. A precomputed
    `password_hash` (the demo's people share one) skips the slow hashing.
    """
    fields = validate(session, data)
    user = User(active=True, session_version=1)
    _apply(user, fields)
    if password_hash is None:
        if password is None:
            password = auth.generate_password()
            user.must_change_password = True
        password_hash = auth.hash_password(password)
    user.password_hash = password_hash
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after=snapshot(user),
    )
    return user, password


def update(session: Session, actor, user: User, data: dict) -> User:
    """Change a user's details, roles and department."""
    return update_fields(session, actor, user, validate(session, data, current=user))


def update_fields(session: Session, actor, user: User, fields: UserFields) -> User:
    """Write validated values to a user (the last active admin keeps the role); audited."""
    before = snapshot(user)
    if Role.ADMIN in user.roles and Role.ADMIN not in fields.roles:
        _ensure_other_admin(session, user)
    _apply(user, fields)
    session.flush()
    after = snapshot(user)
    if after != before:
        audit.record(
            session,
            actor=actor,
            action="user.update",
            object_type="user",
            object_id=user.id,
            before=before,
            after=after,
        )
    return user


def set_roles(session: Session, actor, user: User, roles: str | list[str]) -> User:
    """Replace a user's roles."""
    data = snapshot(user) | {
        "roles": roles,
        "department": user.department.code if user.department else "",
    }
    data["hired_on"] = user.hired_on.isoformat() if user.hired_on else ""
    return update(session, actor, user, data)


def _ensure_other_admin(session: Session, user: User) -> None:
    others = session.scalar(
        select(func.count())
        .select_from(User)
        .join(UserRole)
        .where(UserRole.role == Role.ADMIN.value, User.active.is_(True), User.id != user.id)
    )
    if not others:
        raise Conflict(
            _l("The last active administrator cannot lose the admin role or be deactivated.")
        )


def deactivate(session: Session, actor, user: User) -> User:
    """Deactivate a user: they cannot sign in and their sessions end at once."""
    if not user.active:
        raise Conflict(_l("%(email)s is already deactivated.", email=user.email))
    if Role.ADMIN in user.roles:
        _ensure_other_admin(session, user)
    before = snapshot(user)
    user.active = False
    user.session_version += 1
    sessions.end_all(session, user, reason="deactivated")
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.deactivate",
        object_type="user",
        object_id=user.id,
        before=before,
        after=snapshot(user),
    )
    return user


def reactivate(session: Session, actor, user: User) -> User:
    """Allow a deactivated user to sign in again."""
    if user.active:
        raise Conflict(_l("%(email)s is already active.", email=user.email))
    user.active = True
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="user.reactivate",
        object_type="user",
        object_id=user.id,
        after=snapshot(user),
    )
    return user


def set_language(session: Session, user: User, language: str | None) -> None:
    """Store a user's preferred UI language (None: follow the browser)."""
    value = inputs.language(language, LANGUAGES)
    if value != user.language:
        before = user.language
        user.language = value
        audit.record(
            session,
            actor=user,
            action="user.language",
            object_type="user",
            object_id=user.id,
            before={"language": before},
            after={"language": value},
        )


def get(session: Session, user_id: int) -> User:
    """A user by id, or NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(_l("No such user."))
    return user


def by_email(session: Session, email: str) -> User:
    """A user by email (case-insensitive), or NotFound."""
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise NotFound(_l("No user with email %(email)s.", email=repr(email)))
    return user


def search(
    session: Session,
    *,
    q: str = "",
    role: str = "",
    department_id: int | None = None,
    active: bool | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[User], int]:
    """One page of users matching the filters (name, email or employee id), by employee id."""
    stmt = select(User)
    if q:
        like = f"%{q.strip().lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(User.name).like(like),
                User.email.like(like),
                func.lower(User.employee_id).like(like),
            )
        )
    if role:
        stmt = stmt.where(User.role_rows.any(UserRole.role == role))
    if department_id:
        stmt = stmt.where(User.department_id == department_id)
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = session.scalars(
        stmt.order_by(User.employee_id).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return list(rows), total


def any_admin(session: Session) -> User | None:
    """The first active administrator, if there is one."""
    return session.scalar(
        select(User)
        .join(UserRole)
        .where(UserRole.role == Role.ADMIN.value, User.active.is_(True))
        .order_by(User.id)
        .limit(1)
    )
