"""`auditapp backup | restore | doctor`: operations commands, thin over services.ops."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from auditapp import MIGRATIONS_DIR, __version__, scheduler
from auditapp.cli._common import actor, begin_audit, fail
from auditapp.extensions import db
from auditapp.services import audit, ops


def _fail_with(exc: ops.OpsError):
    for problem in exc.problems:
        click.echo(f"  {problem}", err=True)
    fail(str(exc))


@click.command("backup")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="A new or empty folder (it will hold personal data: keep it private).",
)
@with_appcontext
def backup_command(out: Path):
    """Copy the database (consistently), every evidence file and a manifest into a folder."""
    begin_audit()
    try:
        manifest = ops.backup(
            db.session,
            current_app.extensions["evidence_store"],
            out,
            actor=actor(),
            app_version=__version__,
            anchor=audit.Anchor.from_config(current_app.config),
            busy_timeout_ms=current_app.config["SQLITE_BUSY_TIMEOUT_MS"],
        )
    except ops.OpsError as exc:
        db.session.rollback()
        _fail_with(exc)
    except OSError as exc:  # e.g. the disk filled up; the folder was emptied again
        db.session.rollback()
        fail(f"backup failed: {exc}")
    db.session.commit()
    database, chain = manifest["database"], manifest["audit_chain"]
    counts = manifest["row_counts"]
    click.echo(f"backup written to {out}")
    click.echo(
        f"  database: {database['kind']}"
        + (f" schema {database['schema']}" if "schema" in database else "")
        + f", {sum(counts.values())} rows in {len(counts)} tables, "
        f"revision {manifest['migration_revision'] or 'none'}; "
        f"{database['file']} sha256 {database['sha256']}"
    )
    click.echo(f"  audit chain: {chain['entries']} entries, head {chain['head']}")
    click.echo(f"  audit checkpoint: signed with key {manifest['signature']['key_id']}")
    size = sum(e["size"] for e in manifest["evidence"])
    click.echo(f"  evidence: {len(manifest['evidence'])} files, {size} bytes")
    click.echo(f"  manifest: {out / ops.MANIFEST}")


@click.command("restore")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--force",
    is_flag=True,
    help="Replace the contents of a database and evidence folder that are not empty.",
)
@click.option(
    "--trust-unsigned",
    is_flag=True,
    help="Restore a backup whose manifest signature cannot be checked (made by an older "
    "version, or its audit key is lost); every other check still runs.",
)
@with_appcontext
def restore_command(folder: Path, force: bool, trust_unsigned: bool):
    """Restore a backup into an empty database and evidence folder, then verify it
    (row counts, audit-chain head, every evidence hash) against its manifest."""
    try:
        result = ops.restore(
            db.session,
            current_app.extensions["evidence_store"],
            folder,
            force=force,
            anchor=audit.Anchor.from_config(current_app.config),
            migrations_dir=MIGRATIONS_DIR,
            trust_unsigned=trust_unsigned,
        )
    except ops.OpsError as exc:
        db.session.rollback()
        _fail_with(exc)
    except OSError as exc:
        db.session.rollback()
        fail(f"restore failed: {exc}")
    click.echo(
        f"restored {folder} into {result.kind} {result.target}: {result.rows} rows in "
        f"{result.tables} tables, revision {result.revision or 'none'}"
    )
    click.echo(f"  audit chain: {result.audit_entries} entries, head {result.audit_head}")
    click.echo(
        f"  evidence: {result.evidence_files} files in {current_app.config['EVIDENCE_PATH']}"
    )
    if result.foreign_files:
        click.echo(
            f"  note: {result.foreign_files} file(s) already in the evidence folder are not in "
            f"the backup; they were left in place (`auditapp evidence verify` lists them)"
        )
    for note in result.notes:
        click.echo(f"  note: {note}")
    if result.checkpoint:
        click.echo(f"  audit checkpoint: {result.checkpoint.line()}")
    click.echo(
        "verified: "
        + ("manifest signature, " if result.signed else "")
        + "schema, row counts, audit trail and every evidence hash match the manifest"
    )
    click.echo("next: `auditapp doctor --full` (and `auditapp init` if the schema is behind)")


@click.command("doctor")
@click.option("--full", is_flag=True, help="Also re-hash every evidence file (reads them all).")
@with_appcontext
def doctor_command(full: bool):
    """Check configuration, database, migrations and schema, evidence folder, scheduler, the
    audit chain and its anchor; one line per check (OK, WARN or FAIL); exit 1 on any FAIL."""
    found = ops.doctor(
        db.session,
        current_app.extensions["evidence_store"],
        config=current_app.config,
        migrations_dir=MIGRATIONS_DIR,
        lock_holder=scheduler.current_holder,
        last_run=scheduler.last_successful_tick,
        anchor=audit.Anchor.from_config(current_app.config),
        full=full,
    )
    width = max(len(d.name) for d in found)
    for d in found:
        click.echo(f"{d.status.value:<4}  {d.name:<{width}}  {d.detail}")
    tally = {status: sum(1 for d in found if d.status is status) for status in ops.Health}
    summary = ", ".join(f"{n} {status.value}" for status, n in tally.items())
    if not full:
        click.echo("(evidence files not re-hashed; `auditapp doctor --full` does)")
    if tally[ops.Health.FAIL]:
        fail(f"doctor: {summary}")
    click.echo(f"doctor: {summary}")
