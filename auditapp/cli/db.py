"""`auditapp db …`: Flask-Migrate's commands (migrate, upgrade, history, …).

Flask-Migrate's own group builds the app in its callback, which click runs before a
subcommand reads its --help; so this group has no callback and each command builds the app
when it runs, then leaves the group's --directory and --x-arg where Flask-Migrate reads them.
"""

from __future__ import annotations

import copy
import functools

import click
from flask import g
from flask_migrate import cli as migrate_cli

from auditapp.cli._common import enter_app


def _run_in_app(command: click.Command) -> click.Command:
    """A copy of a Flask-Migrate command that builds the app and sets `g` before it runs."""
    original = command.callback

    @functools.wraps(original)
    def callback(*args, **kwargs):
        ctx = click.get_current_context()
        enter_app(ctx)
        g.directory = ctx.parent.params["directory"]
        g.x_arg = ctx.parent.params["x_arg"]
        return original(*args, **kwargs)

    clone = copy.copy(command)
    clone.callback = callback
    return clone


group = click.Group(
    "db",
    commands=[_run_in_app(c) for c in migrate_cli.db.commands.values()],
    params=migrate_cli.db.params,
    help=migrate_cli.db.help,
)
