"""`auditapp checks list`, and the scheduler's commands `auditapp tick` and
`auditapp scheduler` (they create and chase the checks)."""

from __future__ import annotations

import sys

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from auditapp import scheduler
from auditapp.cli._common import domain_errors, fail, parse_today, print_table
from auditapp.extensions import db
from auditapp.services import checks, periods, users


@click.group("checks", cls=AppGroup)
def group():
    """Periodic checks of the controls."""


@group.command("list")
@click.option("--fy", "fiscal_year", default=None, help="e.g. FY2026")
@click.option(
    "--status",
    type=click.Choice(["open", "attested", "accepted", "returned", "overdue"]),
    default=None,
)
@click.option("--owner", default=None, help="Owner's email.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@click.option("--today", "today_text", default=None, help="Judge 'overdue' as of this day.")
def checks_list(fiscal_year, status, owner, fmt, today_text):
    """List checks: id, control code, period key, due date, status, owner."""
    today = parse_today(today_text)
    flt = checks.CheckFilter(status=status or "")
    if fiscal_year:
        try:
            flt.fiscal_year = periods.parse_fiscal_year(fiscal_year)
        except ValueError as exc:
            fail(f"--fy: {exc}", 2)
    if owner:
        with domain_errors():
            flt.owner_id = users.by_email(db.session, owner).id
    rows = [
        [
            str(c.id),
            c.control.code,
            c.period_key,
            c.due_date.isoformat(),
            c.display_status(today),
            c.control.owner.email if c.control.owner else "",
        ]
        for c in checks.iter_checks(db.session, "cli", flt, today)
    ]
    print_table(["id", "control", "period", "due", "status", "owner"], rows, fmt)


def _refuse_an_invalid_catalog(what: str) -> None:
    """Scheduling works from the catalog: list its problems and stop if it is invalid."""
    problems = scheduler.check_catalog(current_app)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        fail(f"the catalog is invalid; {what} until it is fixed")


@click.command("tick")
@click.option("--today", "today_text", default=None, help="Run as of this day (YYYY-MM-DD).")
@with_appcontext
def tick_command(today_text):
    """Run every scheduled job once for a day (again or to catch up); idempotent."""
    today = parse_today(today_text)
    _refuse_an_invalid_catalog("scheduling refuses to run")
    runner = scheduler.Runner(current_app._get_current_object(), kind="tick")
    try:
        if not runner.keep_lock():
            holder = scheduler.current_holder(db.session)
            fail(
                f"the scheduler lock is held by {holder.holder if holder else 'another process'}"
                f"; try again later"
            )
        outcomes = runner.tick(today)
    finally:
        runner.stop()
    for outcome in outcomes:
        click.echo(f"{'ok  ' if outcome.ok else 'FAIL'} {outcome.job_id}: {outcome.message}")
    if not all(o.ok for o in outcomes):
        sys.exit(1)


@click.command("scheduler")
@with_appcontext
def scheduler_command():
    """Run the scheduler as its own process (the production way); one holds the lock."""
    _refuse_an_invalid_catalog("the scheduler refuses to start")
    runner = scheduler.Runner(current_app._get_current_object())
    click.echo(
        f"scheduler {runner.holder}: daily at {current_app.config['SCHEDULER_DAILY_AT']} "
        f"{current_app.config['TIMEZONE']}; Ctrl-C stops"
    )
    try:
        runner.scheduler(blocking=True).start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        runner.stop()
