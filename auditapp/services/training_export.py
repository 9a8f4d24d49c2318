"""The training sheets of the auditor workbook: person × course, and per department.

Registered with the export service when imported (export loads this module before it
writes a workbook). Rows are read in keyset-paginated batches, each in its own short
read, like the export's own sheets.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import and_, or_, select, tuple_

from auditapp.models import Completion, Course, Department
from auditapp.services import export, training

_WORDS = {
    "ja": {
        "sheet": "研修",
        "by_dept": "研修（部署別）",
        "employee_id": "社員番号",
        "name": "氏名",
        "department": "部署",
        "course": "研修コード",
        "title": "研修名",
        "status": "状態",
        "completed_on": "受講日",
        "valid_until": "有効期限・期限",
        "score": "点数",
        "total": "対象者数",
        "exempt": "免除",
        "valid": "有効な受講",
        "percent": "受講率(%)",
        "overdue": "期限超過",
        "complete": "受講済み",
        "due_soon": "期限間近",
        "not_started": "未受講",
    },
    "en": {
        "sheet": "Training",
        "by_dept": "Training by department",
        "employee_id": "Employee ID",
        "name": "Name",
        "department": "Department",
        "course": "Course",
        "title": "Title",
        "status": "Status",
        "completed_on": "Completed on",
        "valid_until": "Valid until / due",
        "score": "Score",
        "total": "Must take",
        "exempt": "Exempt",
        "valid": "Valid",
        "percent": "Completion %",
        "overdue": "Overdue",
        "complete": "complete",
        "due_soon": "due soon",
        "not_started": "not started",
    },
}
_WORDS["ja"]["exempt_status"] = "免除"
_WORDS["en"]["exempt_status"] = "exempt"
_WORDS["ja"]["overdue_status"] = "期限超過"
_WORDS["en"]["overdue_status"] = "overdue"


def _w(ctx, key: str) -> str:
    return _WORDS.get(ctx.lang, _WORDS["en"])[key]


def _status_label(ctx, status: str) -> str:
    key = {"exempt": "exempt_status", "overdue": "overdue_status"}.get(status, status)
    return _w(ctx, key)


class TrainingSheet:
    """Person × course: status, completed on, valid until (or due by), score."""

    title = "Training"

    def columns(self, ctx) -> list[export.Column]:
        colours = {
            _status_label(ctx, "overdue"): export._BAD,
            _status_label(ctx, "due_soon"): export._WARN,
            _status_label(ctx, "complete"): export._GOOD,
        }
        return (
            [
                export.Column(_w(ctx, k), w)
                for k, w in (
                    ("employee_id", 12),
                    ("name", 18),
                    ("department", 18),
                    ("course", 14),
                    ("title", 28),
                )
            ]
            + [export.Column(_w(ctx, "status"), 12, colours)]
            + [
                export.Column(_w(ctx, k), w)
                for k, w in (("completed_on", 12), ("valid_until", 14), ("score", 8))
            ]
        )

    def count(self, ctx) -> int:
        with ctx.read():
            sub = training.status_select(ctx.session, ctx.today).subquery()
            from sqlalchemy import func

            return ctx.session.scalar(select(func.count()).select_from(sub)) or 0

    def rows(self, ctx) -> Iterable[Sequence[Any]]:
        with ctx.read():
            departments = {d.id: d.label(ctx.lang) for d in ctx.session.scalars(select(Department))}
            courses = {c.id: c for c in ctx.session.scalars(select(Course))}
            courses = {i: (c.code, c.title(ctx.lang)) for i, c in courses.items()}

        def make(after):
            sub = training.status_select(ctx.session, ctx.today).subquery()
            stmt = select(sub).order_by(sub.c.user_id, sub.c.course_id)
            if after is not None:
                stmt = stmt.where(tuple_(sub.c.user_id, sub.c.course_id) > after)
            return stmt

        def scores(rows):
            keys = [(r.user_id, r.course_id, r.completed_on) for r in rows if r.completed_on]
            if not keys:
                return {}
            found = ctx.session.execute(
                select(
                    Completion.user_id,
                    Completion.course_id,
                    Completion.completed_on,
                    Completion.score,
                ).where(
                    or_(
                        *[
                            and_(
                                Completion.user_id == u,
                                Completion.course_id == c,
                                Completion.completed_on == d,
                            )
                            for u, c, d in keys
                        ]
                    )
                )
            ).all()
            return {(u, c, d): s for u, c, d, s in found}

        for batch, score_map in ctx.batches(
            make, lambda r: (r.user_id, r.course_id), enrich=scores, size=500
        ):
            for r in batch:
                code, title = courses.get(r.course_id, ("", ""))
                yield [
                    r.employee_id,
                    r.name,
                    departments.get(r.department_id, ""),
                    code,
                    title,
                    _status_label(ctx, r.status),
                    _date(r.completed_on),
                    _date(r.valid_until or r.due_on),
                    (score_map or {}).get((r.user_id, r.course_id, r.completed_on)),
                ]
                ctx.advance()


class TrainingByDepartmentSheet:
    """Completion % per department and course."""

    title = "Training by department"

    def columns(self, ctx) -> list[export.Column]:
        return [
            export.Column(_w(ctx, k), w)
            for k, w in (
                ("department", 20),
                ("course", 14),
                ("title", 28),
                ("total", 10),
                ("exempt", 8),
                ("valid", 10),
                ("overdue", 10),
                ("percent", 12),
            )
        ]

    def rows(self, ctx) -> Iterable[Sequence[Any]]:
        with ctx.read():
            departments = {d.id: d.label(ctx.lang) for d in ctx.session.scalars(select(Department))}
            courses = {
                c.id: (c.code, c.title(ctx.lang)) for c in ctx.session.scalars(select(Course))
            }
            cells = training.rollup_table(ctx.session, ctx.today)
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


def _date(value):
    if value is None or hasattr(value, "isoformat"):
        return value
    from datetime import date

    return date.fromisoformat(str(value)[:10])


def summary(ctx) -> Iterable[tuple[str, str, Any]]:
    """The overall completion rate on the Summary sheet."""
    with ctx.read():
        cells = training.rollup_table(ctx.session, ctx.today)
    counted = sum(c["total"] - c["exempt"] for c in cells.values())
    valid = sum(c["valid"] for c in cells.values())
    value = round(100 * valid / counted, 1) if counted else None
    yield (
        "training_overall",
        ctx.t("training_overall"),
        value if value is not None else ctx.t("na"),
    )


for _provider in (TrainingSheet(), TrainingByDepartmentSheet()):
    if all(type(p) is not type(_provider) for p in export.SHEET_PROVIDERS):
        export.SHEET_PROVIDERS.append(_provider)
if summary not in export.SUMMARY_PROVIDERS:
    export.SUMMARY_PROVIDERS.append(summary)
