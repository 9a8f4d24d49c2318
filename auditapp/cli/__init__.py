"""The `auditapp` command: Flask's commands plus one group per noun, thin over services."""

from __future__ import annotations

import csv
import getpass
import shutil
import sys
import unicodedata
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import FlaskGroup
from flask_migrate import upgrade

from auditapp import create_app, storage
from auditapp.errors import DomainError
from auditapp.extensions import db
from auditapp.services import (
    audit,
    catalog,
    catalog_files,
    dashboard,
    demo,
    evidence,
    filetypes,
    inputs,
    user_import,
    users,
)
from auditapp.services.csvfile import csv_safe


def _actor() -> str:
    """How the command line is named in the audit trail."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return f"cli:{who}"


def _start() -> None:
    """Tag the session's audit entries as coming from the command line."""
    db.session.info[audit.META_KEY] = {"client_addr": "cli", "request_id": None}


def _fail(message: str, code: int = 1):
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(cls=FlaskGroup, create_app=create_app, add_version_option=True)
def cli():
    """auditapp: APPI safeguards (安全管理措置) control catalog, checks, evidence and audit."""


@cli.command("init")
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option("--admin-name", default="システム管理者", show_default=True)
def init_command(admin_email: str, admin_name: str):
    """Create or upgrade the schema and create the first admin (password printed once)."""
    _start()
    before = dashboard.migration_revision(db.session)
    db.session.rollback()
    upgrade()
    after = dashboard.migration_revision(db.session)
    changed = before != after
    click.echo(
        f"schema: upgraded {before} -> {after}" if changed else f"schema: current at {after}"
    )
    try:
        synced = catalog.sync(db.session, _actor(), current_app.config["CATALOG_PATH"])
    except catalog.CatalogInvalid as exc:
        db.session.rollback()
        _print_catalog_errors(exc.catalog)
        _fail("the catalog is invalid; fix the files above and run `auditapp init` again")
    db.session.commit()
    click.echo(f"catalog: {_sync_summary(synced)}")
    changed = changed or synced.changes > 0
    admin = users.any_admin(db.session)
    if admin is None:
        try:
            admin, password = users.create(
                db.session,
                _actor(),
                {
                    "employee_id": "ADMIN-1",
                    "name": admin_name,
                    "email": admin_email,
                    "roles": ["admin"],
                },
            )
        except DomainError as exc:
            db.session.rollback()
            _fail(str(exc))
        db.session.commit()
        click.echo("first administrator created — this password is shown only once:")
        click.echo(f"  admin login: {admin.email}")
        click.echo(f"  password:    {password}")
        click.echo("  (you will be asked to choose your own password at first sign-in)")
        changed = True
    else:
        click.echo(
            f"admin login: {admin.email} (reset with: auditapp users reset-password {admin.email})"
        )
    if not changed:
        click.echo("nothing changed")


def _scale(controls: int, years: int) -> None:
    from auditapp.services import checks

    counts = demo.scale_controls(
        db.session,
        _actor(),
        count=controls,
        years=max(years, 1),
        today=_today(),
        cfg=checks.CheckSettings.from_config(current_app.config),
    )
    db.session.commit()
    click.echo(
        f"demo: {counts['controls']} synthetic controls, {counts['checks']} checks, "
        f"{counts['accepted']} accepted"
    )


@cli.command("demo")
@click.option("--people", default=30, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--if-empty", is_flag=True, help="Do nothing when the organization has data.")
@click.option(
    "--years",
    default=2,
    show_default=True,
    type=click.IntRange(0, 10),
    help="Fiscal years of check history (0: none).",
)
@click.option(
    "--controls",
    default=0,
    show_default=True,
    type=click.IntRange(0, 20_000),
    help="Add this many synthetic monthly controls with history (benchmarks).",
)
def demo_command(people: int, if_empty: bool, years: int, controls: int):
    """Create a demo organization (departments and people across all roles); with
    --controls, add synthetic controls with check history to an existing demo."""
    _start()
    if controls and demo.has_data(db.session):
        _scale(controls, years)
        return
    if demo.has_data(db.session):
        if if_empty:
            click.echo("demo: the organization already has data; nothing changed")
            return
        _fail("the organization already has departments; the demo needs an empty one")
    result = demo.create(db.session, _actor(), people=people)
    db.session.commit()
    click.echo(f"demo: {result.departments} departments, {result.people} people created")
    click.echo(f"  demo people sign in with their email and the password: {result.password}")
    click.echo("  (list them with: auditapp users list)")
    if years:
        from auditapp.services import checks

        counts = demo.history(
            db.session,
            _actor(),
            current_app.extensions["evidence_store"],
            today=_today(),
            years=years,
            cfg=checks.CheckSettings.from_config(current_app.config),
            retention_years=current_app.config["EVIDENCE_RETENTION_YEARS"],
        )
        counts |= demo.training_history(
            db.session,
            _actor(),
            current_app.extensions["evidence_store"],
            today=_today(),
            retention_years=current_app.config["EVIDENCE_RETENTION_YEARS"],
        )
        db.session.commit()
        click.echo(
            f"demo: {counts['completions']} training completions; "
            f"{counts['created']} checks over {years} fiscal years, "
            f"{counts['attested']} attested, {counts['accepted']} accepted, "
            f"{counts['returned']} returned, {counts['findings']} findings"
        )
    if controls:
        _scale(controls, years)


# users -----------------------------------------------------------------------


@cli.group("users")
def users_group():
    """People: add, list, roles, deactivate, import from CSV, reset passwords."""


@users_group.command("add")
@click.option("--employee-id", required=True)
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--department", default="", help="Department code or name.")
@click.option("--roles", required=True, help="e.g. 'manager;employee'")
@click.option("--hired-on", default="", help="YYYY-MM-DD")
def users_add(employee_id, name, email, department, roles, hired_on):
    """Add a person; their first password is printed once."""
    _start()
    try:
        user, password = users.create(
            db.session,
            _actor(),
            {
                "employee_id": employee_id,
                "name": name,
                "email": email,
                "department": department,
                "roles": roles,
                "hired_on": hired_on,
            },
        )
    except DomainError as exc:
        db.session.rollback()
        _fail(str(exc))
    db.session.commit()
    click.echo(f"created {user.email} (id {user.id}); one-time password: {password}")


@users_group.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@click.option("--all", "include_all", is_flag=True, help="Include deactivated people.")
def users_list(fmt, include_all):
    """List people (employee id, name, email, department, roles, active)."""
    rows, _total = users.search(
        db.session, active=None if include_all else True, page=1, page_size=1_000_000
    )
    header = ["employee_id", "name", "email", "department", "roles", "active"]
    data = [
        [
            u.employee_id,
            u.name,
            u.email,
            u.department.code if u.department else "",
            ";".join(sorted(r.value for r in u.roles)),
            "yes" if u.active else "no",
        ]
        for u in rows
    ]
    print_table(header, data, fmt)


def _display_width(value: str) -> int:
    """Columns a string takes in a terminal (wide Japanese characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in value)


def print_table(header: list[str], rows: list[list[str]], fmt: str) -> None:
    """Print rows as an aligned table or as CSV (cells starting = + - @ are quoted safe)."""
    if fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows([[csv_safe(v) for v in row] for row in rows])
        return
    widths = [
        max([_display_width(h)] + [_display_width(r[i]) for r in rows])
        for i, h in enumerate(header)
    ]
    for row in [header, *rows]:
        cells = [v + " " * (w - _display_width(v)) for v, w in zip(row, widths, strict=True)]
        click.echo("  ".join(cells).rstrip())


def _user(email: str):
    try:
        return users.by_email(db.session, email)
    except DomainError as exc:
        _fail(str(exc))


@users_group.command("set-roles")
@click.argument("email")
@click.argument("roles")
def users_set_roles(email, roles):
    """Replace a person's roles, e.g. `auditapp users set-roles a@b.jp 'manager;employee'`."""
    _start()
    user = _user(email)
    try:
        users.set_roles(db.session, _actor(), user, roles)
    except DomainError as exc:
        db.session.rollback()
        _fail(str(exc))
    db.session.commit()
    click.echo(f"{user.email}: roles now {';'.join(sorted(r.value for r in user.roles))}")


@users_group.command("deactivate")
@click.argument("email")
def users_deactivate(email):
    """Deactivate a person: no more sign-ins; their sessions end."""
    _start()
    user = _user(email)
    try:
        users.deactivate(db.session, _actor(), user)
    except DomainError as exc:
        db.session.rollback()
        _fail(str(exc))
    db.session.commit()
    click.echo(f"{user.email}: deactivated")


@users_group.command("reset-password")
@click.argument("email")
def users_reset_password(email):
    """Give a person a new one-time password (printed once)."""
    from auditapp.services import auth

    _start()
    user = _user(email)
    password = auth.reset_password(db.session, _actor(), user)
    db.session.commit()
    click.echo(f"{user.email}: one-time password {password} (must be changed at next sign-in)")


@users_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--encoding", type=click.Choice(["utf-8", "cp932"]), default="utf-8", show_default=True
)
@click.option("--skip-invalid", is_flag=True, help="Import the good rows and report the others.")
def users_import(file: Path, encoding: str, skip_invalid: bool):
    """Import people from CSV (employee_id,name,email,department,roles,hired_on)."""
    _start()
    with file.open("rb") as stream:
        result = user_import.import_users(
            db.session, _actor(), stream, encoding=encoding, skip_invalid=skip_invalid
        )
    for error in result.errors:
        click.echo(str(error), err=True)
    if not result.written:
        db.session.rollback()
        click.echo(f"{len(result.errors)} problem(s); nothing was imported", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(
        f"imported: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged"
        + (f", {len(result.errors)} row problem(s) skipped" if result.errors else "")
    )


# catalog ---------------------------------------------------------------------


def _print_catalog_errors(cat) -> None:
    for error in cat.errors:
        click.echo(str(error), err=True)


def _sync_summary(result) -> str:
    parts = [
        f"{len(result.added)} added",
        f"{len(result.updated)} updated",
        f"{len(result.retired)} retired",
        f"{len(result.restored)} restored",
        f"{result.unchanged} unchanged",
    ]
    return f"{', '.join(parts)} ({result.changes} changes; version {result.version[:12]})"


@cli.group("catalog")
def catalog_group():
    """The control catalog (controls/*.yaml): validate, sync, list, owners, profile."""


@catalog_group.command("validate")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def catalog_validate(path: Path | None):
    """Check the catalog files (default: the configured controls/ folder); exit 1 on problems."""
    cat = catalog_files.load_catalog(path or current_app.config["CATALOG_PATH"])
    if cat.ok:
        click.echo(
            f"catalog valid: {len(cat.controls)} controls in {len(cat.files)} files, "
            f"version {cat.version[:12]}"
        )
        return
    _print_catalog_errors(cat)
    _fail(f"{len(cat.errors)} problem(s) in the catalog")


@catalog_group.command("sync")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def catalog_sync(path: Path | None):
    """Load the catalog files into the database (idempotent; removed controls are retired)."""
    _start()
    try:
        result = catalog.sync(db.session, _actor(), path or current_app.config["CATALOG_PATH"])
    except catalog.CatalogInvalid as exc:
        db.session.rollback()
        _print_catalog_errors(exc.catalog)
        _fail("the catalog is invalid; nothing was synced")
    db.session.commit()
    for label, codes in (
        ("added", result.added),
        ("updated", result.updated),
        ("retired", result.retired),
        ("restored", result.restored),
    ):
        if codes:
            click.echo(f"{label}: {', '.join(codes)}")
    click.echo(f"catalog sync: {_sync_summary(result)}")


@catalog_group.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="en")
@click.option("--unowned", is_flag=True, help="Only applicable controls without an owner.")
def catalog_list(fmt: str, lang: str, unowned: bool):
    """List the active controls (id, category, frequency, owner, applicable, title)."""
    rows = catalog.search(db.session, catalog.ControlFilter(unowned=unowned))
    header = ["id", "category", "frequency", "owner", "applicable", "version", "title"]
    data = [
        [
            c.code,
            c.category,
            c.effective_frequency,
            c.owner.email if c.owner else "",
            "yes" if c.applicable else "no",
            str(c.version),
            c.title(lang),
        ]
        for c in rows
    ]
    print_table(header, data, fmt)


@catalog_group.command("assign")
@click.argument("control_id")
@click.argument("email")
def catalog_assign(control_id: str, email: str):
    """Make a manager the owner of a control, e.g. `auditapp catalog assign ORG-01 a@b.jp`."""
    _start()
    try:
        control = catalog.get(db.session, control_id)
        catalog.update_settings(
            db.session,
            _actor(),
            control,
            owner_email=email,
            frequency_override=control.frequency_override,
            applicable=control.applicable,
            justification=control.na_justification,
        )
    except DomainError as exc:
        db.session.rollback()
        _fail(str(exc))
    db.session.commit()
    click.echo(f"{control.code}: owner {control.owner.email}")


@catalog_group.command("profile")
@click.argument("value", required=False, type=click.Choice(["standard", "sme"]))
def catalog_profile(value: str | None):
    """Show or set the organization's profile (standard or sme: 中小規模事業者)."""
    _start()
    if value:
        catalog.set_profile(db.session, _actor(), value)
        db.session.commit()
    click.echo(f"profile: {catalog.profile(db.session).value}")


# evidence --------------------------------------------------------------------


def _today() -> date:
    return datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()


def _parse_today(value: str | None) -> date:
    """--today YYYY-MM-DD (impossible dates refused), else today in the configured zone."""
    if not value:
        return _today()
    try:
        return inputs.parse_date(value, "--today", required=True)
    except DomainError as exc:
        _fail(str(exc), 2)


@cli.group("evidence")
def evidence_group():
    """Evidence files: add, verify the store, purge withdrawn items past retention."""


@evidence_group.command("add")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--link",
    "links",
    multiple=True,
    required=True,
    help="What it proves, e.g. control:ORG-01 (repeatable).",
)
@click.option("--description", default="")
@click.option("--valid-until", default="", help="YYYY-MM-DD")
@click.option("--supersedes", type=int, default=None, help="Id of the item this replaces.")
def evidence_add(file: Path, links, description, valid_until, supersedes):
    """Store a file as evidence (streamed, hashed, type checked by content)."""
    _start()
    store = current_app.extensions["evidence_store"]
    today = _today()
    try:
        plan = evidence.plan_upload(
            db.session,
            _actor(),
            links=list(links),
            description=description,
            valid_until=valid_until,
            supersedes_id=supersedes,
            today=today,
        )
        db.session.rollback()  # no database transaction during file work
        name = filetypes.safe_filename(file.name)
        pending = store.begin()
        try:
            with file.open("rb") as source:
                shutil.copyfileobj(source, pending, storage.CHUNK_SIZE)
            ftype = filetypes.check(pending, name)
            blob = store.commit(pending)
        except storage.EmptyBlob:
            _fail(f"{file}: the file is empty")
        finally:
            store.abort(pending)
        item = evidence.record_upload(
            db.session,
            _actor(),
            plan,
            blob,
            ftype,
            name,
            retention_years=current_app.config["EVIDENCE_RETENTION_YEARS"],
            today=today,
        )
    except DomainError as exc:
        db.session.rollback()
        _fail(str(exc))
    db.session.commit()
    click.echo(
        f"evidence {item.id}: {item.filename} ({item.media_type}, {item.size} bytes) "
        f"sha256 {item.sha256}"
    )


@evidence_group.command("verify")
def evidence_verify():
    """Re-hash every stored file; report missing, altered and orphaned files (exit 1)."""
    report = evidence.verify(db.session, current_app.extensions["evidence_store"])
    for evidence_id, sha in report.missing:
        click.echo(f"missing: evidence {evidence_id} sha256 {sha}", err=True)
    for evidence_id, sha in report.altered:
        click.echo(f"altered: evidence {evidence_id} sha256 {sha}", err=True)
    for sha in report.orphaned:
        click.echo(f"orphaned: file {sha} belongs to no evidence item", err=True)
    if not report.ok:
        _fail(
            f"{len(report.missing)} missing, {len(report.altered)} altered, "
            f"{len(report.orphaned)} orphaned of {report.checked} checked"
        )
    click.echo(f"evidence store intact: {report.checked} files verified")


@evidence_group.command("purge")
@click.option("--today", "today_text", default=None, help="Run as of this day (YYYY-MM-DD).")
def evidence_purge(today_text):
    """Delete the bytes of withdrawn items whose retention has ended (recorded)."""
    _start()
    today = _parse_today(today_text)
    purged = evidence.mark_purged(db.session, _actor(), today)
    db.session.commit()
    deleted = evidence.delete_unreferenced(
        db.session, current_app.extensions["evidence_store"], [sha for _id, sha in purged]
    )
    for evidence_id, sha in purged:
        click.echo(f"purged: evidence {evidence_id} sha256 {sha}")
    click.echo(f"purge: {len(purged)} item(s) past retention, {deleted} file(s) deleted")


# checks and the scheduler ------------------------------------------------------


@cli.command("tick")
@click.option("--today", "today_text", default=None, help="Run as of this day (YYYY-MM-DD).")
def tick_command(today_text):
    """Run every scheduled job once for a day (again or to catch up); idempotent."""
    from auditapp import scheduler

    today = _parse_today(today_text)
    problems = scheduler.check_catalog(current_app)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        _fail("the catalog is invalid; scheduling refuses to run until it is fixed")
    runner = scheduler.Runner(current_app._get_current_object(), kind="tick")
    try:
        if not runner.keep_lock():
            holder = scheduler.current_holder(db.session)
            _fail(
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


@cli.command("scheduler")
def scheduler_command():
    """Run the scheduler as its own process (the production way); one holds the lock."""
    from auditapp import scheduler

    problems = scheduler.check_catalog(current_app)
    if problems:
        for problem in problems:
            click.echo(problem, err=True)
        _fail("the catalog is invalid; the scheduler refuses to start until it is fixed")
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


@cli.group("checks")
def checks_group():
    """Periodic checks of the controls."""


@checks_group.command("list")
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
    """List checks: id, control id, period key, due date, status, owner."""
    from auditapp.services import checks, periods

    today = _parse_today(today_text)
    flt = checks.CheckFilter(status=status or "")
    if fiscal_year:
        try:
            flt.fiscal_year = periods.parse_fiscal_year(fiscal_year)
        except ValueError as exc:
            _fail(f"--fy: {exc}", 2)
    if owner:
        flt.owner_id = _user(owner).id
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


# training --------------------------------------------------------------------


@cli.group("training")
def training_group():
    """Training and pledges: courses, status, LMS/HR import."""


@training_group.command("courses")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@click.option("--all", "include_all", is_flag=True, help="Include retired courses.")
def training_courses(fmt, include_all):
    """List courses: code, title, kind, recurrence in months."""
    from auditapp.services import training

    rows = [
        [c.code, c.title_ja, c.kind, str(c.recurrence_months), "yes" if c.active else "no"]
        for c in training.list_courses(db.session, include_retired=include_all)
    ]
    print_table(["code", "title", "kind", "recurrence_months", "active"], rows, fmt)


@training_group.command("status")
@click.option("--department", default=None, help="Department code or name.")
@click.option("--course", "course_code", default=None, help="Course code.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@click.option("--today", "today_text", default=None, help="Judge status as of this day.")
def training_status(department, course_code, fmt, today_text):
    """Each person's status for each course they must take."""
    from auditapp.services import departments as departments_service
    from auditapp.services import training

    today = _parse_today(today_text)
    flt = training.StatusFilter()
    if department:
        dept = departments_service.find(db.session, department)
        if dept is None:
            _fail(f"--department: unknown department {department!r}", 2)
        flt.department_id = dept.id
    if course_code:
        try:
            flt.course_id = training.get_course(db.session, course_code).id
        except DomainError as exc:
            _fail(f"--course: {exc}", 2)
    rows = list(training.iter_status_csv(db.session, today, flt, "ja"))
    header = ["person", "department", "course", "status", "valid_until"]
    print_table(header, [[r[1], r[2], r[3], r[4], r[6] or r[7]] for r in rows[1:]], fmt)


@training_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--encoding", type=click.Choice(["utf-8", "cp932"]), default="utf-8", show_default=True
)
@click.option("--skip-invalid", is_flag=True, help="Import the good rows and report the others.")
@click.option("--today", "today_text", default=None, help="Treat this day as today.")
def training_import(file: Path, encoding: str, skip_invalid: bool, today_text):
    """Import completions (employee_id or email, course_code, completed_on, score)."""
    from auditapp.services import training

    _start()
    with file.open("rb") as stream:
        result = training.import_completions(
            db.session,
            _actor(),
            stream,
            today=_parse_today(today_text),
            encoding=encoding,
            skip_invalid=skip_invalid,
        )
    for error in result.errors:
        click.echo(str(error), err=True)
    if not result.written:
        db.session.rollback()
        click.echo(f"{len(result.errors)} problem(s); nothing was imported", err=True)
        sys.exit(1)
    db.session.commit()
    click.echo(
        f"imported: {result.added} added, {result.already} already recorded"
        + (f", {len(result.errors)} row problem(s) skipped" if result.errors else "")
    )


# audit -----------------------------------------------------------------------


@cli.group("audit")
def audit_group():
    """The hash-chained audit trail."""


@audit_group.command("verify")
def audit_verify():
    """Recompute the chain; exit 1 naming the first broken entry."""
    report = audit.verify(db.session)
    if report.ok:
        click.echo(f"audit chain intact: {report.count} entries, head {report.head}")
        return
    _fail(
        f"audit chain broken at entry {report.broken_id}: {report.problem} "
        f"({report.count} entries verified before it)"
    )


from auditapp.cli.export import register as register_export  # noqa: E402 (needs `cli`)
from auditapp.cli_ops import register as register_ops  # noqa: E402 (needs `cli` defined)

register_export(cli)
register_ops(cli)


def main() -> None:
    """Entry point of the `auditapp` console script."""
    cli()
