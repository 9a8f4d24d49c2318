"""`auditapp evidence …`: evidence files — add, verify the store, purge past retention."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from auditapp.cli._common import actor, begin_audit, domain_errors, fail, parse_today, today
from auditapp.extensions import db
from auditapp.services import evidence


@click.group("evidence", cls=AppGroup)
def group():
    """Evidence files: add, verify the store, purge withdrawn items past retention."""


@group.command("add")
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
    begin_audit()
    day = today()
    with domain_errors():
        plan = evidence.plan_upload(
            db.session,
            actor(),
            links=list(links),
            description=description,
            valid_until=valid_until,
            supersedes_id=supersedes,
            today=day,
        )
        with file.open("rb") as source:
            item = evidence.store_upload(
                db.session,
                current_app.extensions["evidence_store"],
                actor(),
                plan,
                source,
                file.name,
                today=day,
                retention_years=current_app.config["EVIDENCE_RETENTION_YEARS"],
            )
    db.session.commit()
    click.echo(
        f"evidence {item.id}: {item.filename} ({item.media_type}, {item.size} bytes) "
        f"sha256 {item.sha256}"
    )


@group.command("verify")
def evidence_verify():
    """Re-hash every stored file; report missing, altered and orphaned files (exit 1)."""
    report = evidence.verify(db.session, current_app.extensions["evidence_store"])
    for evidence_id, sha in report.missing:
        click.echo(f"missing: evidence {evidence_id} sha256 {sha}", err=True)
    for evidence_id, sha in report.altered:
        click.echo(f"altered: evidence {evidence_id} sha256 {sha}", err=True)
    for sha in report.orphaned:
        # Bytes no item refers to (an interrupted upload or purge): not damage; the
        # cleanup job removes them after a day.
        click.echo(f"warning: orphaned file {sha} belongs to no evidence item", err=True)
    if not report.ok:
        fail(
            f"{len(report.missing)} missing, {len(report.altered)} altered "
            f"of {report.checked} checked"
        )
    orphans = f"; {len(report.orphaned)} orphaned file(s)" if report.orphaned else ""
    click.echo(f"evidence store intact: {report.checked} files verified{orphans}")


@group.command("purge")
@click.option("--today", "today_text", default=None, help="Run as of this day (YYYY-MM-DD).")
def evidence_purge(today_text):
    """Delete the bytes of withdrawn items whose retention has ended (recorded)."""
    begin_audit()
    day = parse_today(today_text)
    result = evidence.purge_expired(
        db.session, current_app.extensions["evidence_store"], actor(), day
    )
    for evidence_id, sha in result.purged:
        click.echo(f"purged: evidence {evidence_id} sha256 {sha}")
    click.echo(
        f"purge: {len(result.purged)} item(s) past retention, {result.deleted} file(s) deleted"
    )
