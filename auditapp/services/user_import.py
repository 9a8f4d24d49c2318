"""Import people from an HR CSV: check every row first, then write all or nothing, fast.

A bulk import must not hold the database for long, since every sign-in and upload writes
to it too (on SQLite they wait for the one writer; on PostgreSQL for the audit trail's
lock). So:

- the file is checked on a connection of its own that only reads (no write lock), in
  memory against the people and departments loaded once (no query per row);
- imported people get no password (no scrypt hash per person, the cost that made 4,000
  people take 5 minutes): they get one from a reset (`auditapp users reset-password` or
  the admin page), and until then signing in as them fails like a wrong password;
- the write is the caller's one transaction, so the import stays all or nothing. It
  first reloads the people and refuses (nothing written, "import it again") if anyone
  the file names changed since the check; then it inserts the new people and their roles
  a batch per statement and appends their audit entries in one go, the chain last.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auditapp import database
from auditapp.errors import DomainError, InvalidInput
from auditapp.models import Department, Role, User, UserRole
from auditapp.models.types import utcnow
from auditapp.services import audit, users
from auditapp.services.csvfile import RowError, RowInvalid, check_file
from auditapp.services.users import UserFields

REQUIRED = {"employee_id", "name", "email", "roles"}
# A file without one of these leaves it as it is for people already known.
OPTIONAL = {"department", "hired_on", "language"}
BATCH_ROWS = 500  # people per INSERT statement
CHANGED_MEANWHILE = (
    "people or departments were changed while the file was being checked; "
    "nothing was imported, import it again"
)


@dataclass
class ImportResult:
    """What an import did (or would have done) and every problem found."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False


def import_users(
    session: Session,
    actor,
    stream: BinaryIO,
    *,
    encoding: str = "utf-8",
    skip_invalid: bool = False,
) -> ImportResult:
    """Import users from a CSV byte stream, keyed by employee_id (a re-import updates).

    Every row is validated before anything is written. With errors and no skip_invalid,
    nothing is written and `written` stays False (the caller rolls back). New people get
    no usable password: signing in as them fails like a wrong password until someone
    resets it for them.
    """
    with _reader(session) as reader:
        directory = _Directory.load(reader)
        checked = check_file(
            stream,
            encoding=encoding,
            required=REQUIRED,
            optional=OPTIONAL,
            check_row=_RowChecker(reader, directory).check,
        )
    result = ImportResult(errors=checked.errors)
    if not checked.may_write(skip_invalid):
        return result
    # From here on the caller's transaction (on SQLite it takes the write lock now).
    now = _Directory.load(session)
    plans = [plan for _, plan in checked.rows]
    if not now.confirms(directory, plans):
        result.errors.append(RowError(1, "file", CHANGED_MEANWHILE))
        return result
    new = [now.rebound(plan.fields) for plan in plans if plan.current is None]
    known = [(line, plan) for line, plan in checked.rows if plan.current is not None]
    changed = [(line, plan) for line, plan in known if plan.changes]
    result.unchanged = len(known) - len(changed)
    if not _create(session, actor, new, result):
        return result
    _update(session, actor, now, changed, result)
    if result.errors and not skip_invalid:
        return result  # a row refused while writing (the last admin keeps the role)
    audit.record(
        session,
        actor=actor,
        action="user.import",
        object_type="user",
        after={
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "skipped_errors": len(result.errors),
        },
    )
    result.written = True
    return result


# Checking -------------------------------------------------------------------------------


@contextmanager
def _reader(session: Session) -> Iterator[Session]:
    """A session of its own that only reads (a deferred transaction on SQLite), so
    checking a large file holds no write lock while sign-ins and uploads go on. Closing
    it ends its transaction; what it loaded stays readable (close does not expire)."""
    with database.reading(), Session(bind=session.get_bind()) as reader:
        yield reader


def _values(fields: UserFields) -> tuple:
    """A person's values as plain data (compared across sessions: department by id)."""
    return (
        fields.employee_id,
        fields.name,
        fields.email,
        fields.department.id if fields.department else None,
        frozenset(fields.roles),
        fields.hired_on,
        fields.language,
    )


@dataclass
class _Known:
    """A person already in the database, as the import compares them."""

    id: int
    employee_id: str
    fields: UserFields


@dataclass
class _Plan:
    """A checked row: the values to write and the person it updates (None: a new one)."""

    fields: UserFields
    current: _Known | None

    @property
    def changes(self) -> bool:
        """True when the row changes the known person it names."""
        return self.current is not None and _values(self.fields) != _values(self.current.fields)


@dataclass
class _Directory:
    """Departments and people loaded once for a whole file (a users.Lookup)."""

    departments: dict[str, Department]
    by_id: dict[int, _Known]
    by_email: dict[str, _Known]
    by_employee_id: dict[str, _Known]

    @classmethod
    def load(cls, session: Session) -> _Directory:
        """Every department by code and names, every person by id, email and employee id."""
        all_departments = list(session.scalars(select(Department)))
        departments: dict[str, Department] = {}
        for dept in all_departments:
            # Written so that a code wins over another department's name, as users type codes.
            for key in (dept.name_en, dept.name, dept.code):
                if key:
                    departments[key.strip().lower()] = dept
        by_id = {d.id: d for d in all_departments}
        roles: dict[int, set[Role]] = defaultdict(set)
        for user_id, role in session.execute(select(UserRole.user_id, UserRole.role)):
            roles[user_id].add(Role(role))
        people = [
            _Known(
                row.id,
                row.employee_id,
                UserFields(
                    employee_id=row.employee_id,
                    name=row.name,
                    email=row.email,
                    department=by_id.get(row.department_id),
                    roles=roles[row.id],
                    hired_on=row.hired_on,
                    language=row.language,
                ),
            )
            for row in session.execute(
                select(
                    User.id,
                    User.employee_id,
                    User.name,
                    User.email,
                    User.department_id,
                    User.hired_on,
                    User.language,
                )
            )
        ]
        return cls(
            departments,
            {p.id: p for p in people},
            {p.fields.email: p for p in people},
            {p.employee_id: p for p in people},
        )

    def department(self, code_or_name: str) -> Department | None:
        return self.departments.get((code_or_name or "").strip().lower())

    def person_by_email(self, email: str) -> _Known | None:
        return self.by_email.get(email)

    def person_by_employee_id(self, employee_id: str) -> _Known | None:
        return self.by_employee_id.get(employee_id)

    def confirms(self, checked: _Directory, plans: list[_Plan]) -> bool:
        """True when what the plans were checked against still holds here: the same
        departments, each updated person as they were, and nobody else holding a new
        person's employee id or anyone's new email."""
        if _department_keys(self) != _department_keys(checked):
            return False
        for plan in plans:
            current = plan.current
            holder = self.by_email.get(plan.fields.email)
            if current is None:
                if plan.fields.employee_id in self.by_employee_id or holder is not None:
                    return False
                continue
            now = self.by_id.get(current.id)
            if now is None or _values(now.fields) != _values(current.fields):
                return False
            if holder is not None and holder.id != current.id:
                return False
        return True

    def rebound(self, fields: UserFields) -> UserFields:
        """The same values with this session's department object (to write with)."""
        if fields.department is None:
            return fields
        department = self.departments[fields.department.code.strip().lower()]
        return dataclasses.replace(fields, department=department)


def _department_keys(directory: _Directory) -> dict[str, int]:
    """Which department each code or name finds, by id."""
    return {key: dept.id for key, dept in directory.departments.items()}


# What a known person keeps when the file has no such column.
_KEPT = {
    "department": lambda f: f.department.code if f.department else "",
    "hired_on": lambda f: f.hired_on.isoformat() if f.hired_on else "",
    "language": lambda f: f.language or "",
}


@dataclass
class _RowChecker:
    """Checks each row with the people's service rules and against the rows before it."""

    session: Session
    directory: _Directory
    seen_ids: dict[str, int] = field(default_factory=dict)
    seen_emails: dict[str, int] = field(default_factory=dict)

    def check(self, line: int, row: dict[str, str]) -> _Plan:
        """The row's plan, or RowInvalid naming each problem."""
        emp = (row.get("employee_id") or "").strip()
        current = self.directory.person_by_employee_id(emp) if emp else None
        data = dict(row)
        for column, kept in _KEPT.items():
            if column not in row:
                data[column] = kept(current.fields) if current else ""
        try:
            fields = users.validate(self.session, data, current=current, lookup=self.directory)
        except InvalidInput as exc:
            raise RowInvalid(*exc.errors.items()) from exc
        if fields.employee_id in self.seen_ids:
            first = self.seen_ids[fields.employee_id]
            raise RowInvalid(("employee_id", f"{fields.employee_id} also on line {first}"))
        if fields.email in self.seen_emails:
            first = self.seen_emails[fields.email]
            raise RowInvalid(("email", f"{fields.email} also on line {first}"))
        self.seen_ids[fields.employee_id] = line
        self.seen_emails[fields.email] = line
        return _Plan(fields, current)


# Writing --------------------------------------------------------------------------------


def _batches(items: list, size: int = BATCH_ROWS) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _create(session: Session, actor, new: list[UserFields], result: ImportResult) -> bool:
    """Insert the new people, then their roles, a batch per statement, then their audit
    entries (the chain is locked last, so sign-ins wait for it only at the end). False
    when another transaction took one of their emails or ids meanwhile (reported)."""
    if not new:
        return True
    now = utcnow()
    # Core executemany of one compiled statement, without RETURNING: psycopg parses each
    # multi-row VALUES statement that RETURNING needs anew (50 ms per 500 rows, measured).
    try:
        with session.begin_nested():
            for batch in _batches(new):
                session.execute(insert(User.__table__), [_user_row(f, now) for f in batch])
    except IntegrityError:
        result.errors.append(RowError(1, "file", CHANGED_MEANWHILE))
        return False
    id_of = dict(session.execute(select(User.employee_id, User.id)).all())
    roles = [
        {"user_id": id_of[fields.employee_id], "role": role.value}
        for fields in new
        for role in sorted(fields.roles)
    ]
    for batch in _batches(roles):
        session.execute(insert(UserRole.__table__), batch)
    audit.record_many(
        session,
        (
            {
                "actor": actor,
                "action": "user.create",
                "object_type": "user",
                "object_id": id_of[fields.employee_id],
                "after": users.fields_snapshot(fields, active=True),
            }
            for fields in new
        ),
    )
    result.created = len(new)
    return True


def _user_row(fields: UserFields, now) -> dict:
    """The user_account row of a new person: active, no password until a reset."""
    return {
        "employee_id": fields.employee_id,
        "name": fields.name,
        "email": fields.email,
        "department_id": fields.department.id if fields.department else None,
        "hired_on": fields.hired_on,
        "language": fields.language,
        "active": True,
        # No usable password: sign-in fails as for a wrong one; a reset gives one.
        "password_hash": None,
        "must_change_password": True,
        "session_version": 1,
        "created_at": now,
    }


def _update(
    session: Session,
    actor,
    now: _Directory,
    changed: list[tuple[int, _Plan]],
    result: ImportResult,
) -> None:
    """Write each changed person through the people service (audited, last-admin rule);
    a row refused there becomes that row's error."""
    for batch in _batches(changed):
        loaded = {
            u.id: u
            for u in session.scalars(
                select(User).where(User.id.in_([plan.current.id for _, plan in batch]))
            )
        }
        for line, plan in batch:
            try:
                # A savepoint per row: a rule checked only on write (the last admin keeps
                # the role) becomes this row's error instead of ending the whole import.
                with session.begin_nested():
                    user = loaded[plan.current.id]
                    users.update_fields(session, actor, user, now.rebound(plan.fields))
            except DomainError as exc:
                column = next(iter(exc.errors), "row")
                result.errors.append(
                    RowError(line, column, str(exc.errors.get(column, exc.message)))
                )
                continue
            result.updated += 1
