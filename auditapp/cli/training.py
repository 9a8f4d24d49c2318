"""`auditapp training …`: courses, each person's status, completions imported from an LMS/HR."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from auditapp.cli._common import (
    actor,
    begin_audit,
    domain_errors,
    fail,
    finish_import,
    parse_today,
    print_table,
)
from auditapp.extensions import db
from auditapp.services import departments, training


@click.group("training", cls=AppGroup)
def group():
    """Training and pledges: courses, status, LMS/HR import."""


@group.command("courses")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@click.option("--all", "include_all", is_flag=True, help="Include retired courses.")
def training_courses(fmt, include_all):
    """List courses: code, title, kind, recurrence in months."""
    rows = [
        [c.code, c.title_ja, c.kind, str(c.recurrence_months), "yes" if c.active else "no"]
        for c in training.list_courses(db.session, include_retired=include_all)
    ]
    print_table(["code", "title", "kind", "recurrence_months", "active"], rows, fmt)


def _status_filter(department: str | None, course_code: str | None) -> training.StatusFilter:
    """--department and --course as a filter; unknown ones are a usage error (exit 2)."""
    flt = training.StatusFilter()
    if department:
        dept = departments.find(db.session, department)
        if dept is None:
            fail(f"--department: unknown department {department!r}", 2)
        flt.department_id = dept.id
    if course_code:
        with domain_errors("--course: ", 2):
            flt.course_id = training.get_course(db.session, course_code).id
    return flt


@group.command("status")
@click.option("--department", default=None, help="Department code or name.")
@click.option("--course", "course_code", default=None, help="Course code.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@click.option("--today", "today_text", default=None, help="Judge status as of this day.")
def training_status(department, course_code, fmt, today_text):
    """Each person's status for each course they must take."""
    today = parse_today(today_text)
    flt = _status_filter(department, course_code)
    lines = training.iter_status_csv(db.session, today, flt, "ja")
    names = next(lines)  # the columns are picked by the names in the service's header
    rows = [dict(zip(names, line, strict=True)) for line in lines]
    print_table(
        ["person", "department", "course", "status", "valid_until"],
        [
            [r["name"], r["department"], r["course"], r["status"], r["valid_until"] or r["due_on"]]
            for r in rows
        ],
        fmt,
    )


@group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--encoding", type=click.Choice(["utf-8", "cp932"]), default="utf-8", show_default=True
)
@click.option("--skip-invalid", is_flag=True, help="Import the good rows and report the others.")
@click.option("--today", "today_text", default=None, help="Treat this day as today.")
def training_import(file: Path, encoding: str, skip_invalid: bool, today_text):
    """Import completions (employee_id or email, course_code, completed_on, score)."""
    begin_audit()
    with file.open("rb") as stream:
        result = training.import_completions(
            db.session,
            actor(),
            stream,
            today=parse_today(today_text),
            encoding=encoding,
            skip_invalid=skip_invalid,
        )
    finish_import(result, f"{result.added} added, {result.already} already recorded")
