"""`auditapp users …`: people — add, list, roles, deactivate, import from CSV, passwords."""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from auditapp.cli._common import actor, begin_audit, domain_errors, finish_import, print_table
from auditapp.extensions import db
from auditapp.services import auth, user_import, users


@click.group("users", cls=AppGroup)
def group():
    """People: add, list, roles, deactivate, import from CSV, reset passwords."""


@group.command("add")
@click.option("--employee-id", required=True)
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--department", default="", help="Department code or name.")
@click.option("--roles", required=True, help="e.g. 'manager;employee'")
@click.option("--hired-on", default="", help="YYYY-MM-DD")
def users_add(employee_id, name, email, department, roles, hired_on):
    """Add a person; their first password is printed once."""
    begin_audit()
    with domain_errors():
        user, password = users.create(
            db.session,
            actor(),
            {
                "employee_id": employee_id,
                "name": name,
                "email": email,
                "department": department,
                "roles": roles,
                "hired_on": hired_on,
            },
        )
    db.session.commit()
    click.echo(f"created {user.email} (id {user.id}); one-time password: {password}")


@group.command("list")
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


@group.command("set-roles")
@click.argument("email")
@click.argument("roles")
def users_set_roles(email, roles):
    """Replace a person's roles, e.g. `auditapp users set-roles a@b.jp 'manager;employee'`."""
    begin_audit()
    with domain_errors():
        user = users.by_email(db.session, email)
        users.set_roles(db.session, actor(), user, roles)
    db.session.commit()
    click.echo(f"{user.email}: roles now {';'.join(sorted(r.value for r in user.roles))}")


@group.command("deactivate")
@click.argument("email")
def users_deactivate(email):
    """Deactivate a person: no more sign-ins; their sessions end."""
    begin_audit()
    with domain_errors():
        user = users.by_email(db.session, email)
        users.deactivate(db.session, actor(), user)
    db.session.commit()
    click.echo(f"{user.email}: deactivated")


@group.command("reset-password")
@click.argument("email")
def users_reset_password(email):
    """Give a person a new one-time password (printed once)."""
    begin_audit()
    with domain_errors():
        user = users.by_email(db.session, email)
    password = auth.reset_password(db.session, actor(), user)
    db.session.commit()
    click.echo(f"{user.email}: one-time password {password} (must be changed at next sign-in)")


@group.command("unlock")
@click.argument("email")
def users_unlock(email):
    """Forget a person's failed sign-ins so the throttle no longer holds them back (for a
    locked-out administrator: needs no one to sign in)."""
    begin_audit()
    with domain_errors():
        user = users.by_email(db.session, email)
    cleared = auth.unlock(db.session, actor(), user)
    db.session.commit()
    click.echo(f"{user.email}: unlocked ({cleared} failed sign-in(s) cleared)")


@group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--encoding", type=click.Choice(["utf-8", "cp932"]), default="utf-8", show_default=True
)
@click.option("--skip-invalid", is_flag=True, help="Import the good rows and report the others.")
def users_import(file: Path, encoding: str, skip_invalid: bool):
    """Import people from CSV (employee_id,name,email,department,roles,hired_on)."""
    begin_audit()
    with file.open("rb") as stream:
        result = user_import.import_users(
            db.session, actor(), stream, encoding=encoding, skip_invalid=skip_invalid
        )
    finish_import(
        result,
        f"{result.created} created, {result.updated} updated, {result.unchanged} unchanged",
    )
