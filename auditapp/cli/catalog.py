"""`auditapp catalog …`: the control catalog (controls/*.yaml) — validate, sync, list, owners,
profile."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from auditapp.cli._common import (
    actor,
    begin_audit,
    domain_errors,
    fail,
    print_catalog_errors,
    print_table,
    setting,
    sync_summary,
)
from auditapp.extensions import db
from auditapp.services import catalog


@click.group("catalog", cls=AppGroup)
def group():
    """The control catalog (controls/*.yaml): validate, sync, list, owners, profile."""


# It only reads files: no app, no SECRET_KEY, no database (a fresh checkout can run it).
@group.command("validate", with_appcontext=False)
@click.argument("path", required=False, type=click.Path(path_type=Path))
def catalog_validate(path: Path | None):
    """Check the catalog files (default: the configured controls/ folder); exit 1 on problems."""
    cat = catalog.load_catalog(path or setting("CATALOG_PATH"))
    if cat.ok:
        click.echo(
            f"catalog valid: {len(cat.controls)} controls in {len(cat.files)} files, "
            f"version {cat.version[:12]}"
        )
        return
    print_catalog_errors(cat)
    fail(f"{len(cat.errors)} problem(s) in the catalog")


@group.command("sync")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def catalog_sync(path: Path | None):
    """Load the catalog files into the database (idempotent; removed controls are retired)."""
    begin_audit()
    try:
        result = catalog.sync(db.session, actor(), path or current_app.config["CATALOG_PATH"])
    except catalog.CatalogInvalid as exc:
        db.session.rollback()
        print_catalog_errors(exc.catalog)
        fail("the catalog is invalid; nothing was synced")
    db.session.commit()
    for label, codes in (
        ("added", result.added),
        ("updated", result.updated),
        ("retired", result.retired),
        ("restored", result.restored),
    ):
        if codes:
            click.echo(f"{label}: {', '.join(codes)}")
    click.echo(f"catalog sync: {sync_summary(result)}")


@group.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "csv"]), default="table")
@click.option("--lang", type=click.Choice(["ja", "en"]), default="en")
@click.option("--unowned", is_flag=True, help="Only applicable controls without an owner.")
def catalog_list(fmt: str, lang: str, unowned: bool):
    """List the active controls (code, category, frequency, owner, applicable, title)."""
    rows = catalog.search(db.session, catalog.ControlFilter(unowned=unowned))
    header = ["code", "category", "frequency", "owner", "applicable", "version", "title"]
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


@group.command("assign")
@click.argument("control_code")
@click.argument("email")
def catalog_assign(control_code: str, email: str):
    """Make a manager the owner of a control, e.g. `auditapp catalog assign ORG-01 a@b.jp`."""
    begin_audit()
    with domain_errors():
        control = catalog.get(db.session, control_code)
        catalog.update_settings(
            db.session,
            actor(),
            control,
            owner_email=email,
            frequency_override=control.frequency_override,
            applicable=control.applicable,
            justification=control.na_justification,
        )
    db.session.commit()
    click.echo(f"{control.code}: owner {control.owner.email}")


@group.command("profile")
@click.argument("value", required=False, type=click.Choice(["standard", "sme"]))
def catalog_profile(value: str | None):
    """Show or set the organization's profile (standard or sme: 中小規模事業者)."""
    begin_audit()
    if value:
        catalog.set_profile(db.session, actor(), value)
        db.session.commit()
    click.echo(f"profile: {catalog.profile(db.session).value}")
