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
from auditapp.services.csvfile import CsvFileError, RowError, RowInvalid, check_file
from auditapp.services.training.status import add_months

IMPORT_REQUIRED = {"course_code", "completed_on"}
IMPORT_OPTIONAL = {"employee_id", "email", "score"}
BATCH_ROWS = 2000  # parameter sets per executemany

# A good row: (course id, person id, completed on) and the score.
_Good = tuple[tuple[int, int, date], int | None]


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
    checker = _RowChecker.load(session, today)
    checked = check_file(
        stream,
        encoding=encoding,
        required=IMPORT_REQUIRED,
        optional=IMPORT_OPTIONAL,
        check_header=_check_header,
        check_row=checker.check,
    )
    result = ImportResult(errors=checked.errors)
    if not checked.may_write(skip_invalid):
        return result
    new_rows = _new_rows(session, actor, checker.courses, [value for _, value in checked.rows])
    result.already = len(checked.rows) - len(new_rows)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One statement executed with many parameter sets: compiled once (building a
    # multi-VALUES statement per batch cost ten times the database's own work).
    stmt = (
        insert(Completion)
        .on_conflict_do_nothing(index_elements=["course_id", "user_id", "completed_on"])
        .returning(Completion.id)
    )
    for start in range(0, len(new_rows), BATCH_ROWS):
        result.added += len(session.execute(stmt, new_rows[start : start + BATCH_ROWS]).all())
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


def _check_header(header: list[str]) -> None:
    """A file names its people by employee_id or by email."""
    if "employee_id" not in header and "email" not in header:
        raise CsvFileError("missing column(s): employee_id or email")


def _new_rows(session: Session, actor, courses: dict[int, Course], good: list[_Good]) -> list[dict]:
    """The Completion rows to insert for the good rows not already recorded."""
    existing = set(
        session.execute(
            select(Completion.course_id, Completion.user_id, Completion.completed_on)
        ).all()
    )
    label = audit.actor_label(actor)[:300]
    recorded_by = actor.id if isinstance(actor, User) else None
    now = utcnow()
    rows = []
    for (course_id, user_id, day), score in good:
        if (course_id, user_id, day) in existing:
            continue
        course = courses[course_id]
        rows.append(
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
                "recorded_by_id": recorded_by,
                "recorded_by_label": label,
                "recorded_at": now,
            }
        )
    return rows


@dataclass
class _RowChecker:
    """Checks one row against the people and courses loaded once for the whole file."""

    by_emp: dict[str, tuple[int, date | None]]
    by_mail: dict[str, tuple[int, date | None]]
    by_code: dict[str, Course]
    today: date
    seen: dict[tuple[int, int, date], int] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, today: date) -> _RowChecker:
        """Active people by employee id and by email (with hire date), courses by code."""
        people = session.execute(
            select(User.id, User.employee_id, User.email, User.hired_on).where(
                User.active.is_(True)
            )
        ).all()
        return cls(
            by_emp={emp: (id_, hired) for id_, emp, _, hired in people},
            by_mail={mail: (id_, hired) for id_, _, mail, hired in people},
            by_code={c.code.lower(): c for c in session.scalars(select(Course))},
            today=today,
        )

    @property
    def courses(self) -> dict[int, Course]:
        """The courses by id."""
        return {c.id: c for c in self.by_code.values()}

    def check(self, line: int, row: dict[str, str]) -> _Good:
        """The row's key and score, or RowInvalid naming each problem (or the duplicate)."""
        problems: list[tuple[str, str]] = []
        person = self._person(row, problems)
        course = self.by_code.get((row.get("course_code") or "").strip().lower())
        if course is None:
            problems.append(("course_code", f"unknown course {row.get('course_code')!r}"))
        day = self._day(row, person, problems)
        score = self._score(row, course, problems)
        if problems:
            raise RowInvalid(*problems)
        key = (course.id, person[0], day)
        if key in self.seen:
            raise RowInvalid(("row", f"duplicate of line {self.seen[key]}"))
        self.seen[key] = line
        return key, score

    def _person(self, row: dict[str, str], problems: list) -> tuple[int, date | None] | None:
        emp = (row.get("employee_id") or "").strip()
        mail = (row.get("email") or "").strip().lower()
        person = self.by_emp.get(emp) if emp else self.by_mail.get(mail) if mail else None
        if not emp and not mail:
            problems.append(("employee_id", "employee_id or email is required"))
        elif person is None:
            problems.append(("employee_id" if emp else "email", f"unknown person {emp or mail!r}"))
        return person

    def _day(self, row: dict[str, str], person, problems: list) -> date | None:
        try:
            day = inputs.parse_date(row.get("completed_on"), "completed_on", required=True)
        except InvalidInput as exc:
            problems.append(("completed_on", str(exc.errors["completed_on"])))
            return None
        hired = person[1] if person is not None else None
        if day > self.today:
            problems.append(("completed_on", f"{day} is in the future"))
        elif hired and day < hired:
            problems.append(("completed_on", f"{day} is before the person was hired ({hired})"))
        return day

    def _score(self, row: dict[str, str], course: Course | None, problems: list) -> int | None:
        raw = (row.get("score") or "").strip()
        if not raw:
            if course is not None and course.score_required:
                problems.append(("score", "is required for this course"))
            return None
        try:
            score = int(raw)
            if not 0 <= score <= 100:
                raise ValueError
        except ValueError:
            problems.append(("score", f"{raw!r} is not a whole number from 0 to 100"))
            return None
        return score
