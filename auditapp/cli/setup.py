"""`auditapp init` and `auditapp demo`: set up an installation, or a demo organization."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade

from auditapp import database
from auditapp.cli._common import (
    actor,
    begin_audit,
    domain_errors,
    fail,
    print_catalog_errors,
    sync_summary,
    today,
)
from auditapp.extensions import db
from auditapp.services import audit, catalog, checks, demo, users


def _upgrade_schema() -> bool:
    """Run the migrations; says what it did and returns whether the schema changed."""
    before = database.migration_revision(db.session)
    db.session.rollback()
    upgrade()
    after = database.migration_revision(db.session)
    changed = before != after
    click.echo(
        f"schema: upgraded {before} -> {after}" if changed else f"schema: current at {after}"
    )
    return changed


def _sync_catalog() -> bool:
    """Sync the configured catalog; returns whether anything changed."""
    try:
        synced = catalog.sync(db.session, actor(), current_app.config["CATALOG_PATH"])
    except catalog.CatalogInvalid as exc:
        db.session.rollback()
        print_catalog_errors(exc.catalog)
        fail("the catalog is invalid; fix the files above and run `auditapp init` again")
    db.session.commit()
    click.echo(f"catalog: {sync_summary(synced)}")
    return synced.changes > 0


def _audit_key() -> bool:
    """Create the audit trail's checkpoint key when there is none; returns whether."""
    if not audit.Anchor.from_config(current_app.config).create_key():
        return False
    click.echo(f"audit key: created {current_app.config['AUDIT_KEY_FILE']} (keep a copy apart)")
    return True


def _first_admin(admin_email: str, admin_name: str) -> bool:
    """Create the first admin (password printed once) unless one exists; returns whether."""
    admin = users.any_admin(db.session)
    if admin is not None:
        click.echo(
            f"admin login: {admin.email} (reset with: auditapp users reset-password {admin.email})"
        )
        return False
    with domain_errors():
        admin, password = users.create(
            db.session,
            actor(),
            {
                "employee_id": "ADMIN-1",
                "name": admin_name,
                "email": admin_email,
                "roles": ["admin"],
            },
        )
    db.session.commit()
    click.echo("first administrator created — this password is shown only once:")
    click.echo(f"  admin login: {admin.email}")
    click.echo(f"  password:    {password}")
    click.echo("  (you will be asked to choose your own password at first sign-in)")
    return True


@click.command("init")
@click.option("--admin-email", default="admin@example.com", show_default=True)
@click.option("--admin-name", default="システム管理者", show_default=True)
@with_appcontext
def init_command(admin_email: str, admin_name: str):
    """Create or upgrade the schema and create the first admin (password printed once)."""
    begin_audit()
    changed = _upgrade_schema()
    changed = _sync_catalog() or changed
    changed = _audit_key() or changed
    changed = _first_admin(admin_email, admin_name) or changed
    if not changed:
        click.echo("nothing changed")


def _scale(controls: int, years: int) -> None:
    counts = demo.scale_controls(
        db.session,
        actor(),
        count=controls,
        years=max(years, 1),
        today=today(),
        cfg=checks.CheckSettings.from_config(current_app.config),
    )
    db.session.commit()
    click.echo(
        f"demo: {counts['controls']} synthetic controls, {counts['checks']} checks, "
        f"{counts['accepted']} accepted"
    )


def _history(years: int) -> None:
    """Fiscal years of check history and training completions for a fresh demo."""
    store = current_app.extensions["evidence_store"]
    retention = current_app.config["EVIDENCE_RETENTION_YEARS"]
    counts = demo.history(
        db.session,
        actor(),
        store,
        today=today(),
        years=years,
        cfg=checks.CheckSettings.from_config(current_app.config),
        retention_years=retention,
    )
    counts |= demo.training_history(
        db.session, actor(), store, today=today(), retention_years=retention
    )
    db.session.commit()
    click.echo(
        f"demo: {counts['completions']} training completions; "
        f"{counts['created']} checks over {years} fiscal years, "
        f"{counts['attested']} attested, {counts['accepted']} accepted, "
        f"{counts['returned']} returned, {counts['findings']} findings"
    )


@click.command("demo")
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
@with_appcontext
def demo_command(people: int, if_empty: bool, years: int, controls: int):
    """Create a demo organization (departments and people across all roles); with
    --controls, add synthetic controls with check history to an existing demo."""
    begin_audit()
    if controls and demo.has_data(db.session):
        _scale(controls, years)
        return
    if demo.has_data(db.session):
        if if_empty:
            click.echo("demo: the organization already has data; nothing changed")
            return
        fail("the organization already has departments; the demo needs an empty one")
    result = demo.create(db.session, actor(), people=people)
    db.session.commit()
    click.echo(f"demo: {result.departments} departments, {result.people} people created")
    click.echo(f"  demo people sign in with their email and the password: {result.password}")
    click.echo("  (list them with: auditapp users list)")
    if years:
        _history(years)
    if controls:
        _scale(controls, years)
