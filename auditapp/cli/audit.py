"""`auditapp audit verify`: recompute the hash chain of the audit trail."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from auditapp.cli._common import fail
from auditapp.extensions import db
from auditapp.services import audit


@click.group("audit", cls=AppGroup)
def group():
    """The hash-chained audit trail."""


@group.command("verify")
def audit_verify():
    """Recompute the chain; exit 1 naming the first broken entry."""
    report = audit.verify(db.session)
    if report.ok:
        click.echo(f"audit chain intact: {report.count} entries, head {report.head}")
        return
    fail(
        f"audit chain broken at entry {report.broken_id}: {report.problem} "
        f"({report.count} entries verified before it)"
    )
