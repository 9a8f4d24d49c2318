"""`auditapp audit verify|checkpoint`: the audit trail's hash chain and its signed anchor."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from auditapp.cli._common import domain_errors, fail
from auditapp.extensions import db
from auditapp.services import audit


@click.group("audit", cls=AppGroup)
def group():
    """The hash-chained audit trail."""


@group.command("verify")
@click.option(
    "--checkpoints",
    "extra",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also check against the checkpoints in this file (a copy kept elsewhere, log lines).",
)
def audit_verify(extra: tuple[Path, ...]):
    """Recompute the chain and check it against every signed checkpoint; exit 1 naming
    each problem (a broken entry, deleted or rewritten entries, a forged checkpoint)."""
    with domain_errors():
        report = audit.check_instance(
            db.session, audit.Anchor.from_config(current_app.config), extra
        )
    db.session.rollback()
    if not report.ok:
        for line in report.lines():
            click.echo(f"error: {line}", err=True)
        sys.exit(1)
    for line in report.lines():
        click.echo(line)


@group.command("checkpoint")
def audit_checkpoint():
    """Write a signed checkpoint (entry count, head hash, time) to the checkpoint file and
    the log, and print it."""
    try:
        with domain_errors("no checkpoint written: "):
            point = audit.write_checkpoint(
                db.session, audit.Anchor.from_config(current_app.config), "manual"
            )
    except OSError as exc:
        fail(f"no checkpoint written: {exc}")
    db.session.rollback()
    click.echo(point.line())
