"""Training and pledges: courses, who must take them, completions, exemptions, status.

Status is computed in SQL for the whole organization (one query joining people, the
courses they must take, their latest passing completion and exemptions), so lists and
roll-ups stay fast at 10,000 people. A completion stores its own `valid_until`
(completed_on + the course's recurrence), so status needs only date comparisons.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO

from sqlalchemy import (
    Date,
    and_,
    case,
    exists,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from auditapp.errors import Forbidden, InvalidInput, NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import (
    Completion,
    Course,
    CourseDepartment,
    CourseKind,
    CourseRole,
    Department,
    Exemption,
    Role,
    TrainingStatus,
    User,
    UserRole,
)
from auditapp.models.types import utcnow
from auditapp.services import audit, inputs
from auditapp.services.csvfile import CsvFileError, RowError, read_rows

MAX_TEXT = 4000


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


# Courses ------------------------------------------------------------------------------


def _course_values(session: Session, data: dict, current: Course | None) -> dict:
    errors: dict = {}
    values: dict = {}
    checks = {
        "code": lambda v: inputs.text(v, "code", max_len=40),
        "title_ja": lambda v: inputs.text(v, "title_ja", max_len=200),
        "title_en": lambda v: inputs.text(v, "title_en", max_len=200),
        "description": lambda v: inputs.text(
            v, "description", max_len=MAX_TEXT, required=False, multiline=True
        ),
        "content_url": lambda v: inputs.text(v, "content_url", max_len=500, required=False),
        "ack_text": lambda v: inputs.text(
            v, "ack_text", max_len=MAX_TEXT, required=False, multiline=True
        ),
        "control_codes": lambda v: inputs.text(v, "control_codes", max_len=200, required=False),
    }
    for name, check in checks.items():
        try:
            values[name] = check(data.get(name))
        except InvalidInput as exc:
            errors.update(exc.errors)
    url = values.get("content_url")
    if url and not url.startswith(("https://", "http://", "/")):
        errors["content_url"] = _l("use a web address starting with https://")
    kind = (data.get("kind") or "training").strip()
    if kind not in {k.value for k in CourseKind}:
        errors["kind"] = _l("choose training or acknowledgement")
    values["kind"] = kind
    if kind == CourseKind.ACKNOWLEDGEMENT and not values.get("ack_text"):
        errors["ack_text"] = _l("an acknowledgement needs the text people agree to")
    for name, low, high, default in (
        ("recurrence_months", 0, 120, 12),
        ("new_hire_grace_days", 0, 365, 30),
        ("due_soon_days", 0, 365, 30),
    ):
        raw = str(data.get(name, default)).strip()
        try:
            number = int(raw)
            if not low <= number <= high:
                raise ValueError
            values[name] = number
        except ValueError:
            errors[name] = _l("a whole number from %(low)s to %(high)s", low=low, high=high)
    values["certificate_required"] = bool(data.get("certificate_required"))
    values["score_required"] = bool(data.get("score_required"))
    pass_mark = str(data.get("pass_mark") or "").strip()
    values["pass_mark"] = None
    if pass_mark:
        try:
            values["pass_mark"] = int(pass_mark)
            if not 0 <= values["pass_mark"] <= 100:
                raise ValueError
        except ValueError:
            errors["pass_mark"] = _l("a whole number from %(low)s to %(high)s", low=0, high=100)
    if values["pass_mark"] is not None and not values["score_required"]:
        errors["pass_mark"] = _l("a pass mark needs a recorded score")
    if "code" in values:
        other = session.scalar(
            select(Course).where(func.lower(Course.code) == values["code"].lower())
        )
        if other is not None and other is not current:
            errors["code"] = _l("is already used")
    audience = data.get("audience") or "all"
    values["audience_all"] = audience == "all"
    departments = sorted({int(d) for d in data.get("departments") or [] if str(d).isdigit()})
    known = set(session.scalars(select(Department.id).where(Department.id.in_(departments))))
    if set(departments) - known:
        errors["departments"] = _l("unknown department")
    roles = [r for r in data.get("roles") or [] if r in {x.value for x in Role}]
    if audience != "all" and not departments and not roles:
        errors["audience"] = _l("choose departments or roles, or everyone")
    values["departments"] = departments
    values["roles"] = roles
    if errors:
        raise InvalidInput.from_errors(errors)
    return values


def snapshot(course: Course) -> dict:
    """The audited fields of a course."""
    return {
        c: getattr(course, c)
        for c in (
            "code",
            "title_ja",
            "title_en",
            "kind",
            "description",
            "content_url",
            "ack_text",
            "audience_all",
            "recurrence_months",
            "new_hire_grace_days",
            "due_soon_days",
            "certificate_required",
            "score_required",
            "pass_mark",
            "control_codes",
            "active",
            "effective_from",
        )
    } | {
        "departments": sorted(r.department_id for r in course.department_rows),
        "roles": sorted(r.role for r in course.role_rows),
    }


def _apply(course: Course, values: dict) -> None:
    for key, value in values.items():
        if key not in ("departments", "roles"):
            setattr(course, key, value)
    course.department_rows = [CourseDepartment(department_id=d) for d in values["departments"]]
    course.role_rows = [CourseRole(role=r) for r in values["roles"]]


def create_course(session: Session, actor, data: dict, today: date) -> Course:
    """Create a course; people already employed are due `new_hire_grace_days` from today."""
    values = _course_values(session, data, None)
    course = Course(effective_from=today, active=True)
    _apply(course, values)
    session.add(course)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="course.create",
        object_type="course",
        object_id=course.code,
        after=snapshot(course),
    )
    return course


def update_course(session: Session, actor, course: Course, data: dict) -> Course:
    """Change a course; completions' validity follows a changed recurrence."""
    before = snapshot(course)
    values = _course_values(session, data, course)
    recurrence_changed = values["recurrence_months"] != course.recurrence_months
    _apply(course, values)
    if recurrence_changed:
        for row in session.scalars(select(Completion).where(Completion.course_id == course.id)):
            row.valid_until = (
                add_months(row.completed_on, course.recurrence_months)
                if course.recurrence_months
                else None
            )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="course.update",
        object_type="course",
        object_id=course.code,
        before=before,
        after=snapshot(course),
    )
    return course


def set_active(session: Session, actor, course: Course, active: bool) -> Course:
    """Retire a course (nobody is due any more; history stays) or bring it back."""
    if course.active != active:
        course.active = active
        audit.record(
            session,
            actor=actor,
            action="course.retire" if not active else "course.restore",
            object_type="course",
            object_id=course.code,
        )
    return course


def get_course(session: Session, code: str) -> Course:
    """A course by code (case-insensitive), or NotFound."""
    course = session.scalar(
        select(Course).where(func.lower(Course.code) == (code or "").strip().lower())
    )
    if course is None:
        raise NotFound(_l("No such course."))
    return course


def list_courses(session: Session, *, include_retired: bool = False) -> list[Course]:
    """Courses by code."""
    stmt = select(Course).order_by(Course.code)
    if not include_retired:
        stmt = stmt.where(Course.active.is_(True))
    return list(session.scalars(stmt))


# Who must take what, and where they stand --------------------------------------------


def _add_days(session: Session, day_expr, days_expr):
    """day + n days in SQL, on SQLite and PostgreSQL."""
    if session.get_bind().dialect.name == "postgresql":
        return type_coerce(day_expr + days_expr, Date)
    return type_coerce(func.date(day_expr, func.printf("+%d days", days_expr)), Date)


def must_take_condition():
    """SQL condition: the person (User) must take the course (Course)."""
    return and_(
        Course.active.is_(True),
        or_(
            Course.audience_all.is_(True),
            exists().where(
                CourseDepartment.course_id == Course.id,
                CourseDepartment.department_id == User.department_id,
            ),
            # One EXISTS over both tables, so it correlates with the outer person and course.
            exists(
                select(CourseRole.course_id)
                .join(UserRole, UserRole.role == CourseRole.role)
                .where(CourseRole.course_id == Course.id, UserRole.user_id == User.id)
            ),
        ),
    )


@dataclass
class StatusFilter:
    """Which rows of the status table to compute."""

    department_id: int | None = None
    course_id: int | None = None
    user_id: int | None = None
    status: str = ""


def status_select(session: Session, today: date, flt: StatusFilter | None = None):
    """A SELECT of (user_id, name, employee_id, department_id, course_id, completed_on,
    valid_until, due_on, status) for every active person and course they must take."""
    flt = flt or StatusFilter()
    # The filters go inside the aggregation too, so a department's page groups only its
    # people's completions, not the whole organization's.
    scope = [Completion.passed.is_(True)]
    if flt.department_id:
        scope.append(
            Completion.user_id.in_(select(User.id).where(User.department_id == flt.department_id))
        )
    if flt.user_id:
        scope.append(Completion.user_id == flt.user_id)
    if flt.course_id:
        scope.append(Completion.course_id == flt.course_id)
    latest = (
        select(
            Completion.user_id.label("user_id"),
            Completion.course_id.label("course_id"),
            func.max(Completion.completed_on).label("last_on"),
            func.max(Completion.valid_until).label("valid_until"),
            func.sum(case((Completion.valid_until.is_(None), 1), else_=0)).label("forever"),
        )
        .where(*scope)
        .group_by(Completion.user_id, Completion.course_id)
        .subquery()
    )
    start = case(
        (User.hired_on > Course.effective_from, User.hired_on), else_=Course.effective_from
    )
    due_new = _add_days(session, start, Course.new_hire_grace_days)
    soon = _add_days(session, literal(today, Date), Course.due_soon_days)
    exempt = exists().where(Exemption.course_id == Course.id, Exemption.user_id == User.id)
    status = case(
        (exempt, TrainingStatus.EXEMPT.value),
        (
            and_(
                latest.c.last_on.is_not(None),
                # Beyond the due-soon window, like a first-time due date (due_new <= soon).
                or_(latest.c.forever > 0, latest.c.valid_until > soon),
            ),
            TrainingStatus.COMPLETE.value,
        ),
        (
            and_(latest.c.last_on.is_not(None), latest.c.valid_until >= literal(today, Date)),
            TrainingStatus.DUE_SOON.value,
        ),
        (latest.c.last_on.is_not(None), TrainingStatus.OVERDUE.value),
        (due_new < literal(today, Date), TrainingStatus.OVERDUE.value),
        (due_new <= soon, TrainingStatus.DUE_SOON.value),
        else_=TrainingStatus.NOT_STARTED.value,
    ).label("status")
    valid_now = case(
        (
            and_(
                latest.c.last_on.is_not(None),
                or_(latest.c.forever > 0, latest.c.valid_until >= literal(today, Date)),
            ),
            1,
        ),
        else_=0,
    ).label("valid_now")
    due_on = case(
        (
            latest.c.last_on.is_not(None),
            case((latest.c.forever > 0, None), else_=latest.c.valid_until),
        ),
        else_=due_new,
    ).label("due_on")
    stmt = (
        select(
            User.id.label("user_id"),
            User.name,
            User.employee_id,
            User.department_id,
            Course.id.label("course_id"),
            latest.c.last_on.label("completed_on"),
            case((latest.c.forever > 0, None), else_=latest.c.valid_until).label("valid_until"),
            due_on,
            valid_now,
            status,
        )
        .select_from(User)
        .join(Course, must_take_condition())
        .outerjoin(latest, and_(latest.c.user_id == User.id, latest.c.course_id == Course.id))
        .where(User.active.is_(True))
    )
    if flt.department_id:
        stmt = stmt.where(User.department_id == flt.department_id)
    if flt.course_id:
        stmt = stmt.where(Course.id == flt.course_id)
    if flt.user_id:
        stmt = stmt.where(User.id == flt.user_id)
    return stmt


def status_rows(
    session: Session, today: date, flt: StatusFilter | None = None, limit: int | None = None
) -> list:
    """The status table rows (ordered by department, employee id, course), at most `limit`."""
    sub = status_select(
        session,
        today,
        StatusFilter(
            department_id=flt.department_id if flt else None,
            course_id=flt.course_id if flt else None,
            user_id=flt.user_id if flt else None,
        ),
    ).subquery()
    stmt = select(sub)
    if flt and flt.status:
        stmt = stmt.where(sub.c.status == flt.status)
    stmt = stmt.order_by(sub.c.department_id, sub.c.employee_id, sub.c.course_id)
    return session.execute(stmt.limit(limit) if limit else stmt).all()


def rollup(session: Session, today: date) -> list:
    """Per department and course: how many must take it and how many are in each status."""
    sub = status_select(session, today).subquery()
    return session.execute(
        select(
            sub.c.department_id,
            sub.c.course_id,
            sub.c.status,
            func.count(),
            func.sum(sub.c.valid_now),
        ).group_by(sub.c.department_id, sub.c.course_id, sub.c.status)
    ).all()


def rollup_table(session: Session, today: date) -> dict:
    """Completion % per department × course and overall, from the SQL roll-up."""
    cells: dict = {}
    for dept_id, course_id, status, count, valid in rollup(session, today):
        cell = cells.setdefault(
            (dept_id, course_id),
            dict.fromkeys([s.value for s in TrainingStatus], 0) | {"total": 0, "valid": 0},
        )
        cell[status] += count
        cell["total"] += count
        if status != TrainingStatus.EXEMPT:
            cell["valid"] += int(valid or 0)
    for cell in cells.values():
        counted = cell["total"] - cell["exempt"]
        cell["percent"] = round(100 * cell["valid"] / counted) if counted else 100
    return cells


# Completions ----------------------------------------------------------------------------


def _is_user(actor) -> bool:
    return isinstance(actor, User)


def may_record_for(actor, person: User) -> bool:
    """Admins record for anyone, managers for their department, employees for themselves."""
    if not _is_user(actor) or actor.has_role(Role.ADMIN):
        return True
    if actor.id == person.id:
        return True
    return (
        actor.has_role(Role.MANAGER)
        and actor.department_id is not None
        and actor.department_id == person.department_id
    )


@dataclass
class CompletionPlan:
    """A checked completion, ready to be written."""

    course: Course
    person: User
    completed_on: date
    score: int | None
    passed: bool
    agreed: bool


def plan_completion(
    session: Session,
    actor,
    course: Course,
    person: User,
    *,
    completed_on: str | date | None,
    score: str | int | None,
    agreed: bool,
    has_certificate: bool,
    today: date,
) -> CompletionPlan:
    """Check a completion: who may record it, the date (not in the future, not before
    hiring), the score (0–100, required when the course records one), the certificate
    and, for a pledge, the explicit agreement."""
    if not may_record_for(actor, person):
        raise Forbidden(_l("You may record completions only for yourself or your department."))
    if not course.active:
        raise InvalidInput(_l("This course is retired."), {"course": _l("is retired")})
    errors: dict = {}
    day = completed_on if isinstance(completed_on, date) else None
    if day is None:
        try:
            day = inputs.parse_date(completed_on, "completed_on", required=True)
        except InvalidInput as exc:
            errors.update(exc.errors)
    if day is not None and day > today:
        errors["completed_on"] = _l("must not be in the future")
    elif day is not None and person.hired_on and day < person.hired_on:
        errors["completed_on"] = _l(
            "is before the person was hired (%(day)s)", day=person.hired_on.isoformat()
        )
    value = None
    raw = str(score).strip() if score is not None else ""
    if raw:
        try:
            value = int(raw)
            if not 0 <= value <= 100:
                raise ValueError
        except ValueError:
            errors["score"] = _l("a whole number from %(low)s to %(high)s", low=0, high=100)
    elif course.score_required:
        errors["score"] = _l("is required for this course")
    if course.certificate_required and not has_certificate:
        errors["certificate"] = _l("this course needs a certificate file")
    if course.kind == CourseKind.ACKNOWLEDGEMENT and not agreed:
        errors["agreed"] = _l("tick the box to agree")
    if errors:
        raise InvalidInput.from_errors(errors)
    passed = value is None or course.pass_mark is None or value >= course.pass_mark
    return CompletionPlan(course, person, day, value, passed, agreed)


def record_completion(session: Session, actor, plan: CompletionPlan, *, source: str) -> Completion:
    """Write a completion. Re-recording the same day changes nothing, except that a passing
    retake replaces a failed attempt of that day (recorded in the audit trail)."""
    existing = session.scalar(
        select(Completion).where(
            Completion.course_id == plan.course.id,
            Completion.user_id == plan.person.id,
            Completion.completed_on == plan.completed_on,
        )
    )
    if existing is not None:
        if existing.passed or not plan.passed:
            return existing
        before = {"score": existing.score, "passed": existing.passed}
        existing.score, existing.passed = plan.score, True
        existing.recorded_by_id = actor.id if _is_user(actor) else None
        existing.recorded_by_label = audit.actor_label(actor)[:300]
        existing.recorded_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="training.retake",
            object_type="completion",
            object_id=existing.id,
            before=before,
            after={"score": plan.score, "passed": True},
        )
        return existing
    row = Completion(
        course_id=plan.course.id,
        user_id=plan.person.id,
        completed_on=plan.completed_on,
        score=plan.score,
        passed=plan.passed,
        valid_until=(
            add_months(plan.completed_on, plan.course.recurrence_months)
            if plan.course.recurrence_months
            else None
        ),
        source=source,
        recorded_by_id=actor.id if _is_user(actor) else None,
        recorded_by_label=audit.actor_label(actor)[:300],
        recorded_at=utcnow(),
        agreed_at=utcnow() if plan.agreed else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="training.complete",
        object_type="completion",
        object_id=row.id,
        after={
            "course": plan.course.code,
            "person": plan.person.employee_id,
            "completed_on": plan.completed_on,
            "score": plan.score,
            "passed": plan.passed,
            "source": source,
            "agreed": plan.agreed,
        },
    )
    return row


def record_group(
    session: Session,
    actor: User,
    course: Course,
    people: list[User],
    *,
    completed_on: str,
    today: date,
) -> list[Completion]:
    """A manager records one session for several people of their department."""
    if not people:
        raise inputs.fail("people", _l("choose at least one person"))
    rows = []
    for person in people:
        plan = plan_completion(
            session,
            actor,
            course,
            person,
            completed_on=completed_on,
            score=None,
            agreed=False,
            has_certificate=True,
            today=today,
        )
        rows.append(record_completion(session, actor, plan, source="manager"))
    return rows


def history(session: Session, person: User) -> list[Completion]:
    """A person's completions, newest first."""
    return list(
        session.scalars(
            select(Completion)
            .where(Completion.user_id == person.id)
            .order_by(Completion.completed_on.desc(), Completion.id.desc())
        )
    )


def grant_exemption(
    session: Session, actor, course: Course, person: User, reason: str | None
) -> Exemption:
    """Exempt a person from a course with a reason (recorded with who granted it)."""
    text = inputs.text(reason, "reason", max_len=MAX_TEXT, multiline=True)
    row = session.scalar(
        select(Exemption).where(Exemption.course_id == course.id, Exemption.user_id == person.id)
    )
    if row is None:
        row = Exemption(course_id=course.id, user_id=person.id)
        session.add(row)
    row.reason = text
    row.granted_by_id = actor.id if _is_user(actor) else None
    row.granted_by_label = audit.actor_label(actor)[:300]
    row.granted_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="training.exempt",
        object_type="course",
        object_id=course.code,
        after={"person": person.employee_id, "reason": text},
    )
    return row


# Import from an LMS or HR export --------------------------------------------------------

IMPORT_REQUIRED = {"course_code", "completed_on"}
IMPORT_OPTIONAL = {"employee_id", "email", "score"}


@dataclass
class ImportResult:
    """What a completion import did and every problem found."""

    added: int = 0
    already: int = 0
    errors: list[RowError] = field(default_factory=list)
    written: bool = False


def import_completions(
    session: Session,
    actor,
    stream: BinaryIO,
    *,
    today: date,
    encoding: str = "utf-8",
    skip_invalid: bool = False,
) -> ImportResult:
    """Import completions (employee_id or email, course_code, completed_on, score), streamed.

    Every row is validated first; with any error and no skip_invalid nothing is written.
    Rows already recorded are counted and skipped, so a re-import adds nothing.
    """
    result = ImportResult()
    by_emp = {
        e: (i, h)
        for i, e, h in session.execute(
            select(User.id, User.employee_id, User.hired_on).where(User.active.is_(True))
        )
    }
    by_mail = {
        m: (i, h)
        for i, m, h in session.execute(
            select(User.id, User.email, User.hired_on).where(User.active.is_(True))
        )
    }
    courses = {c.code.lower(): c for c in session.scalars(select(Course))}
    good: dict[tuple[int, int, date], tuple[int, int | None]] = {}
    try:
        rows = read_rows(
            stream, encoding=encoding, required=IMPORT_REQUIRED, optional=IMPORT_OPTIONAL
        )
        if "employee_id" not in rows.header and "email" not in rows.header:
            raise CsvFileError("missing column(s): employee_id or email")
        for line, row in rows.rows:
            if "__width__" in row:
                result.errors.append(RowError(line, "row", row["__width__"]))
                continue
            _check_import_row(line, row, by_emp, by_mail, courses, today, good, result)
    except CsvFileError as exc:
        result.errors.append(RowError(exc.line, "file", str(exc).split(": ", 1)[1]))
        return result
    if not good and not result.errors:
        result.errors.append(RowError(2, "file", "no data rows after the header"))
    if result.errors and not skip_invalid:
        return result
    existing = set(
        session.execute(
            select(Completion.course_id, Completion.user_id, Completion.completed_on)
        ).all()
    )
    label = audit.actor_label(actor)[:300]
    now = utcnow()
    new_rows = []
    for (course_id, user_id, day), (_line, score) in good.items():
        if (course_id, user_id, day) in existing:
            result.already += 1
            continue
        course = next(c for c in courses.values() if c.id == course_id)
        new_rows.append(
            {
                "course_id": course_id,
                "user_id": user_id,
                "completed_on": day,
                "score": score,
                "passed": score is None or course.pass_mark is None or score >= course.pass_mark,
                "valid_until": add_months(day, course.recurrence_months)
                if course.recurrence_months
                else None,
                "source": "import",
                "recorded_by_id": actor.id if _is_user(actor) else None,
                "recorded_by_label": label,
                "recorded_at": now,
            }
        )
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One statement executed with many parameter sets: compiled once (building a
    # multi-VALUES statement per batch cost ten times the database's own work).
    stmt = (
        insert(Completion)
        .on_conflict_do_nothing(index_elements=["course_id", "user_id", "completed_on"])
        .returning(Completion.id)
    )
    for start in range(0, len(new_rows), 2000):
        result.added += len(session.execute(stmt, new_rows[start : start + 2000]).all())
    audit.record(
        session,
        actor=actor,
        action="training.import",
        object_type="completion",
        after={
            "added": result.added,
            "already": result.already,
            "skipped_errors": len(result.errors),
        },
    )
    result.written = True
    return result


def _check_import_row(line, row, by_emp, by_mail, courses, today, good, result) -> None:
    emp = (row.get("employee_id") or "").strip()
    mail = (row.get("email") or "").strip().lower()
    person = by_emp.get(emp) if emp else by_mail.get(mail) if mail else None
    problems = []
    if not emp and not mail:
        problems.append(("employee_id", "employee_id or email is required"))
    elif person is None:
        problems.append(("employee_id" if emp else "email", f"unknown person {emp or mail!r}"))
    course = courses.get((row.get("course_code") or "").strip().lower())
    if course is None:
        problems.append(("course_code", f"unknown course {row.get('course_code')!r}"))
    day = None
    try:
        day = inputs.parse_date(row.get("completed_on"), "completed_on", required=True)
    except InvalidInput as exc:
        problems.append(("completed_on", str(exc.errors["completed_on"])))
    if day is not None and day > today:
        problems.append(("completed_on", f"{day} is in the future"))
    elif day is not None and person is not None and person[1] and day < person[1]:
        problems.append(("completed_on", f"{day} is before the person was hired ({person[1]})"))
    score = None
    raw = (row.get("score") or "").strip()
    if raw:
        try:
            score = int(raw)
            if not 0 <= score <= 100:
                raise ValueError
        except ValueError:
            problems.append(("score", f"{raw!r} is not a whole number from 0 to 100"))
    elif course is not None and course.score_required:
        problems.append(("score", "is required for this course"))
    if problems:
        result.errors.extend(RowError(line, col, msg) for col, msg in problems)
        return
    key = (course.id, person[0], day)
    if key in good:
        result.errors.append(RowError(line, "row", f"duplicate of line {good[key][0]}"))
        return
    good[key] = (line, score)


def iter_status_csv(
    session: Session, today: date, flt: StatusFilter, lang: str
) -> Iterator[list[str]]:
    """Rows of the status table for a CSV download (header first)."""
    departments = {d.id: d.label(lang) for d in session.scalars(select(Department))}
    courses = {c.id: c for c in session.scalars(select(Course))}
    yield [
        "employee_id",
        "name",
        "department",
        "course",
        "status",
        "completed_on",
        "valid_until",
        "due_on",
    ]
    for row in status_rows(session, today, flt):
        yield [
            row.employee_id,
            row.name,
            departments.get(row.department_id, ""),
            courses[row.course_id].code,
            row.status,
            _iso(row.completed_on),
            _iso(row.valid_until),
            _iso(row.due_on),
        ]


def _iso(value) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)[:10]


def figures_for_control(session: Session, control, today: date) -> dict | None:
    """For controls a course names (e.g. HUM-01): the live completion rate and who is
    overdue, shown on the check page and recorded with the attestation."""
    courses = [c for c in list_courses(session) if control.code in c.controls]
    if not courses:
        return None
    figures: dict = {}
    for course in courses:
        rows = status_rows(session, today, StatusFilter(course_id=course.id))
        counted = [r for r in rows if r.status != TrainingStatus.EXEMPT]
        done = sum(r.valid_now for r in counted)
        overdue = [r.name for r in counted if r.status == TrainingStatus.OVERDUE]
        rate = round(100 * done / len(counted), 1) if counted else 100.0
        figures[f"{course.code} completion %"] = rate
        figures[f"{course.code} overdue people"] = ", ".join(overdue[:50]) or "0"
    return figures
