"""The training sheets of the auditor workbook: person × course, and per department; and
the Summary's overall completion rate.

Each person's status is computed once per export: one read of the training service's
status query (ordered by person and course, with the score of the completion it counts)
into compact arrays, about 21 bytes a row. The rows are then written from those arrays,
the people's names and employee ids read in short batches by id range, so the time per
row stays flat however many people there are. (Re-running the organization's status
query for every batch of rows made the export quadratic in people.)
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import and_, select

from auditapp.models import Completion, Course, Department, TrainingStatus, User
from auditapp.services import training
from auditapp.services.export.context import ExportContext
from auditapp.services.export.writer import BAD, GOOD, WARN, Column, Sheet

_STATUSES = [s.value for s in TrainingStatus]
_CODE = {s: i for i, s in enumerate(_STATUSES)}
PEOPLE_BATCH = 5000  # rows whose people are read together


@dataclass
class Statuses:
    """Person × course statuses in the order of the sheet (user id, then course id): dates
    as ordinals (0 = none), the score -1 when there is none."""

    user_id: array = field(default_factory=lambda: array("i"))
    course_id: array = field(default_factory=lambda: array("i"))
    status: array = field(default_factory=lambda: array("b"))
    completed_on: array = field(default_factory=lambda: array("i"))
    until: array = field(default_factory=lambda: array("i"))  # valid until, or due by
    score: array = field(default_factory=lambda: array("i"))

    def __len__(self) -> int:
        return len(self.user_id)

    def add(self, row) -> None:
        """Append one row of the status query."""
        self.user_id.append(row.user_id)
        self.course_id.append(row.course_id)
        self.status.append(_CODE[row.status])
        self.completed_on.append(_ordinal(row.completed_on))
        self.until.append(_ordinal(row.valid_until or row.due_on))
        self.score.append(-1 if row.score is None else row.score)


def _date(value):
    if value is None or hasattr(value, "isoformat"):
        return value
    return date.fromisoformat(str(value)[:10])


def _ordinal(value) -> int:
    day = _date(value)
    return day.toordinal() if day is not None else 0


def _read_statuses(ctx: ExportContext) -> Statuses:
    """Every active person × course they must take, with status and score: one query,
    streamed in one read (a server-side cursor on PostgreSQL)."""
    sub = training.status_select(ctx.session, ctx.today).subquery()
    stmt = (
        select(
            sub.c.user_id,
            sub.c.course_id,
            sub.c.status,
            sub.c.completed_on,
            sub.c.valid_until,
            sub.c.due_on,
            Completion.score,
        )
        .outerjoin(
            Completion,
            and_(
                Completion.user_id == sub.c.user_id,
                Completion.course_id == sub.c.course_id,
                Completion.completed_on == sub.c.completed_on,
            ),
        )
        .order_by(sub.c.user_id, sub.c.course_id)
    )
    found = Statuses()
    with ctx.read():
        result = ctx.session.connection().execute(stmt.execution_options(yield_per=PEOPLE_BATCH))
        for partition in result.partitions():
            for row in partition:
                found.add(row)
    return found


def statuses(ctx: ExportContext) -> Statuses:
    """The export's person × course statuses (read once, shared by count and rows)."""
    return ctx.once("training.statuses", lambda: _read_statuses(ctx))


def _rollup(ctx: ExportContext) -> dict:
    """Completion per department × course (read once, shared by its sheet and the summary)."""

    def read() -> dict:
        with ctx.read():
            return training.rollup_table(ctx.session, ctx.today)

    return ctx.once("training.rollup", read)


def _names(ctx: ExportContext) -> tuple[dict, dict]:
    """Department labels and (code, title) of courses, in the export's language."""
    with ctx.read():
        departments = {d.id: d.label(ctx.lang) for d in ctx.session.scalars(select(Department))}
        courses = {c.id: (c.code, c.title(ctx.lang)) for c in ctx.session.scalars(select(Course))}
    return departments, courses


def _status_label(ctx: ExportContext, status: str) -> str:
    return ctx.t(f"tr_st_{status}")


# Person × course


def _columns(ctx: ExportContext) -> list[Column]:
    t = ctx.t
    colours = {
        _status_label(ctx, "overdue"): BAD,
        _status_label(ctx, "due_soon"): WARN,
        _status_label(ctx, "complete"): GOOD,
    }
    return (
        [
            Column(t(k), w)
            for k, w in (
                ("tr_employee_id", 12),
                ("tr_name", 18),
                ("tr_department", 18),
                ("tr_course", 14),
                ("tr_title", 28),
            )
        ]
        + [Column(t("status"), 12, colours)]
        + [
            Column(t(k), w)
            for k, w in (("tr_completed_on", 12), ("tr_valid_until", 14), ("tr_score", 8))
        ]
    )


def _people(ctx: ExportContext, first: int, last: int) -> dict[int, tuple]:
    """Employee id, name and department of the people with ids first..last (one read)."""
    with ctx.read():
        rows = ctx.session.execute(
            select(User.id, User.employee_id, User.name, User.department_id).where(
                User.id.between(first, last)
            )
        ).all()
    return {r.id: (r.employee_id, r.name, r.department_id) for r in rows}


def _rows(ctx: ExportContext) -> Iterator[list]:
    """Person × course: status, completed on, valid until (or due by), score."""
    data = statuses(ctx)
    departments, courses = _names(ctx)
    labels = [_status_label(ctx, s) for s in _STATUSES]
    day = date.fromordinal
    for start in range(0, len(data), PEOPLE_BATCH):
        stop = min(start + PEOPLE_BATCH, len(data))
        # Rows are in user id order, so a batch's people are one id range.
        people = _people(ctx, data.user_id[start], data.user_id[stop - 1])
        for i in range(start, stop):
            employee_id, name, department_id = people.get(data.user_id[i], ("", "", None))
            code, title = courses.get(data.course_id[i], ("", ""))
            completed, until, score = data.completed_on[i], data.until[i], data.score[i]
            yield [
                employee_id,
                name,
                departments.get(department_id, ""),
                code,
                title,
                labels[data.status[i]],
                day(completed) if completed else None,
                day(until) if until else None,
                score if score >= 0 else None,
            ]


TRAINING = Sheet("Training", _columns, _rows, lambda ctx: len(statuses(ctx)))


# Per department


def _by_department_columns(ctx: ExportContext) -> list[Column]:
    t = ctx.t
    return [
        Column(t(k), w)
        for k, w in (
            ("tr_department", 20),
            ("tr_course", 14),
            ("tr_title", 28),
            ("tr_total", 10),
            ("tr_exempt", 8),
            ("tr_valid", 10),
            ("tr_overdue", 10),
            ("tr_percent", 12),
        )
    ]


def _by_department_rows(ctx: ExportContext) -> Iterator[list]:
    """Completion % per department and course."""
    departments, courses = _names(ctx)
    cells = _rollup(ctx)
    for (dept_id, course_id), cell in sorted(
        cells.items(), key=lambda kv: (departments.get(kv[0][0], ""), kv[0][1])
    ):
        code, title = courses.get(course_id, ("", ""))
        yield [
            departments.get(dept_id, ""),
            code,
            title,
            cell["total"],
            cell["exempt"],
            cell["valid"],
            cell["overdue"],
            cell["percent"],
        ]


BY_DEPARTMENT = Sheet(
    "Training by department",
    _by_department_columns,
    _by_department_rows,
    lambda ctx: len(_rollup(ctx)),
)


def overall(ctx: ExportContext):
    """The overall completion rate (%, one decimal) for the Summary, or n/a when nobody
    must take any course."""
    cells = _rollup(ctx).values()
    counted = sum(c["total"] - c["exempt"] for c in cells)
    valid = sum(c["valid"] for c in cells)
    return round(100 * valid / counted, 1) if counted else ctx.t("na")
