"""What every command module shares: the group class, how the app is built for a command,
the actor's name, failing with one line, tables, `--today`, and `domain_errors()`.

No command module imports the group (`auditapp.cli`) or another command module; they all
import this one.
"""

from __future__ import annotations

import csv
import getpass
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any, NoReturn

import click
import sqlalchemy as sa
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo

from auditapp import config, create_app
from auditapp.errors import DomainError
from auditapp.extensions import db
from auditapp.services import audit, inputs, periods
from auditapp.services.csvfile import csv_safe


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: <message>` on stderr and exit (1: bad input or state; 2: bad usage)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@contextmanager
def domain_errors(prefix: str = "", code: int = 1) -> Iterator[None]:
    """Run a command's service calls; a DomainError rolls the session back (nothing is
    half-written) and becomes one line on stderr and exit `code`."""
    try:
        yield
    except DomainError as exc:
        db.session.rollback()
        fail(f"{prefix}{exc}", code)


def load_app() -> Flask:
    """Build the app for a command; missing or wrong configuration is one line and exit 1."""
    try:
        return create_app()
    except config.ConfigError as exc:
        fail(str(exc))
    except sa.exc.ArgumentError as exc:  # DATABASE_URL unparsable or its driver unknown
        fail(f"DATABASE_URL: {exc}")
    except OSError as exc:  # e.g. the instance folder cannot be created
        fail(f"cannot start: {exc}")


def enter_app(ctx: click.Context) -> Flask:
    """Build the app and push its context for the rest of this command (for group callbacks
    that decide first whether they need it: click runs them before a subcommand's --help)."""
    app = ctx.ensure_object(ScriptInfo).load_app()
    if not current_app or current_app._get_current_object() is not app:
        ctx.with_resource(app.app_context())
    return app


def _database_problem(exc: sa.exc.DBAPIError) -> str:
    """One line saying which database failed and why (password hidden)."""
    info = click.get_current_context().find_object(ScriptInfo)
    where = ""
    if info is not None:  # the app is loaded by now (it reached the database); load_app caches
        url = sa.engine.make_url(info.load_app().config["SQLALCHEMY_DATABASE_URI"])
        where = f" {url.render_as_string(hide_password=True)}"
    reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc).__name__
    hint = ""
    if "no such table" in reason or type(exc.orig).__name__ == "UndefinedTable":
        hint = "; run `auditapp init` to create the schema"
    return f"the database{where} cannot be used: {reason}{hint}"


class Group(FlaskGroup):
    """Flask's command group, without building the app to list or find commands.

    Every command is added to the group itself (Flask-Migrate's `db` too, in cli/__init__.py),
    none to `app.cli`, so `auditapp --help` and every `--help` work in a fresh checkout without
    SECRET_KEY; the app is built only when a command runs. A database
    that cannot be opened is one line and exit 1, never a traceback.
    """

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._load_plugin_commands()  # any `flask.commands` entry points, as Flask does
        return click.Group.get_command(self, ctx, name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return click.Group.list_commands(self, ctx)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.ProgrammingError) as exc:
            fail(_database_problem(exc))


def setting(key: str) -> Any:
    """One setting as configured, without building the app when none is active, so commands
    that only read files (`catalog validate`) need no SECRET_KEY and no instance folder."""
    if current_app:
        return current_app.config[key]
    instance = config.instance_path_from_env() or Flask("auditapp").instance_path
    try:
        return config.read(instance)[key]
    except config.ConfigError as exc:
        fail(str(exc))


def actor() -> str:
    """How the command line is named in the audit trail."""
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return f"cli:{who}"


def begin_audit() -> None:
    """Tag the session's audit entries as coming from the command line."""
    db.session.info[audit.META_KEY] = {"client_addr": "cli", "request_id": None}


def today() -> date:
    """Today in the configured time zone."""
    return periods.today_in(current_app.config["TIMEZONE"])


def parse_today(value: str | None) -> date:
    """--today YYYY-MM-DD (impossible dates refused), else today in the configured zone."""
    if not value:
        return today()
    with domain_errors(code=2):
        return inputs.parse_date(value, "--today", required=True)


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


def finish_import(result, summary: str) -> None:
    """End a CSV import: each row problem on stderr; then commit and print the summary, or,
    when nothing may be written, roll back and exit 1 (all or nothing)."""
    for error in result.errors:
        click.echo(str(error), err=True)
    if not result.written:
        db.session.rollback()
        click.echo(f"{len(result.errors)} problem(s); nothing was imported", err=True)
        sys.exit(1)
    db.session.commit()
    skipped = f", {len(result.errors)} row problem(s) skipped" if result.errors else ""
    click.echo(f"imported: {summary}{skipped}")


def print_catalog_errors(cat) -> None:
    """Each catalog problem on its own line (`file:line: control: field: problem`)."""
    for error in cat.errors:
        click.echo(str(error), err=True)


def sync_summary(result) -> str:
    """A catalog sync in one line (init and `catalog sync` print it)."""
    parts = [
        f"{len(result.added)} added",
        f"{len(result.updated)} updated",
        f"{len(result.retired)} retired",
        f"{len(result.restored)} restored",
        f"{result.unchanged} unchanged",
    ]
    return f"{', '.join(parts)} ({result.changes} changes; version {result.version[:12]})"
