"""Import completions from an LMS or HR export (CSV) on the shared CSV-import skeleton."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from auditapp.errors import InvalidInput
from auditapp.models import Completion, Course, User
from auditapp.models.types import utcnow
from auditapp.services import audit, inputs
from auditapp.services.csvfile import CsvFileError, RowError, read_rows
from auditapp.services.training.status import add_months

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
                "recorded_by_id": actor.id if isinstance(actor, User) else None,
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
