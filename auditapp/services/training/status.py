"""Where people stand: who must take a course, the status table in SQL, roll-ups, CSV rows.

Status is computed in SQL for the whole organization (one query joining people, the
courses they must take, their latest passing completion and exemptions), so lists and
roll-ups stay fast at 10,000 people. A completion stores its own `valid_until`
(completed_on + the course's recurrence, `add_months`), so status needs only date
comparisons.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

from sqlalchemy import Date, and_, case, exists, func, literal, or_, select, type_coerce
from sqlalchemy.orm import Session

from auditapp.models import (
    Completion,
    Course,
    CourseDepartment,
    CourseRole,
    Department,
    Exemption,
    TrainingStatus,
    User,
    UserRole,
)


def add_months(day: date, months: int) -> date:
    """The same day `months` later, clamped to the month's last day (Jan 31 + 1 = Feb 28)."""
    month = day.month - 1 + months
    year = day.year + month // 12
    month = month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


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
    latest = _latest_passing(flt)
    start = case(
        (User.hired_on > Course.effective_from, User.hired_on), else_=Course.effective_from
    )
    due_new = _add_days(session, start, Course.new_hire_grace_days)
    stmt = (
        select(
            User.id.label("user_id"),
            User.name,
            User.employee_id,
            User.department_id,
            Course.id.label("course_id"),
            latest.c.last_on.label("completed_on"),
            case((latest.c.forever > 0, None), else_=latest.c.valid_until).label("valid_until"),
            _due_on(latest, due_new),
            _valid_now(latest, today),
            _status(session, latest, today, due_new),
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


def _latest_passing(flt: StatusFilter):
    """Per person and course: the last passing completion, its validity, and whether any
    passing completion never expires (`forever` > 0)."""
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
    return (
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


def _status(session: Session, latest, today: date, due_new):
    """The status column: exempt, complete, due soon, overdue or not started."""
    soon = _add_days(session, literal(today, Date), Course.due_soon_days)
    exempt = exists().where(Exemption.course_id == Course.id, Exemption.user_id == User.id)
    return case(
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


def _valid_now(latest, today: date):
    """1 when a passing completion is valid today (it counts towards the completion rate)."""
    return case(
        (
            and_(
                latest.c.last_on.is_not(None),
                or_(latest.c.forever > 0, latest.c.valid_until >= literal(today, Date)),
            ),
            1,
        ),
        else_=0,
    ).label("valid_now")


def _due_on(latest, due_new):
    """When the person is next due: the validity's end, none if it never expires, or the
    first-time due date."""
    return case(
        (
            latest.c.last_on.is_not(None),
            case((latest.c.forever > 0, None), else_=latest.c.valid_until),
        ),
        else_=due_new,
    ).label("due_on")


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
