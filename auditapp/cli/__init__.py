"""The `auditapp` command: Flask's commands plus one module per noun, thin over services.

Each noun module (users, catalog, …) holds its commands and imports only `_common`; this
file joins them, so nothing imports it back (as Redash's cli/__init__.py does).
"""

from __future__ import annotations

import click

from auditapp.cli import (
    audit,
    catalog,
    checks,
    db,
    evidence,
    export,
    ops,
    setup,
    training,
    users,
)
from auditapp.cli._common import Group, load_app


@click.group(cls=Group, create_app=load_app, add_version_option=True)
def cli():
    """auditapp: APPI safeguards (安全管理措置) control catalog, checks, evidence and audit."""


cli.add_command(setup.init_command, "init")
cli.add_command(setup.demo_command, "demo")
cli.add_command(users.group, "users")
cli.add_command(catalog.group, "catalog")
cli.add_command(evidence.group, "evidence")
cli.add_command(checks.group, "checks")
cli.add_command(checks.tick_command, "tick")
cli.add_command(checks.scheduler_command, "scheduler")
cli.add_command(training.group, "training")
cli.add_command(audit.group, "audit")
cli.add_command(export.group, "export")
cli.add_command(ops.backup_command, "backup")
cli.add_command(ops.restore_command, "restore")
cli.add_command(ops.doctor_command, "doctor")
cli.add_command(db.group, "db")  # Flask-Migrate's commands (it would add them to app.cli)


def main() -> None:
    """Entry point of the `auditapp` console script."""
    cli()
