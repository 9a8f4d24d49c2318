"""The PostgreSQL client programs (pg_dump, pg_restore): finding and running them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping

from sqlalchemy.engine import URL

from auditapp.errors import OpsError

TOOL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


def require_tool(name: str) -> str:
    """The path of a PostgreSQL client program on PATH, or OpsError saying how to get it."""
    found = shutil.which(name)
    if not found:
        raise OpsError(
            f"{name} was not found on PATH; install the PostgreSQL client programs of the "
            f"server's major version (Debian/Ubuntu: apt install postgresql-client-15) or add "
            f"their folder to PATH"
        )
    return found


def major_version(path: str) -> tuple[int, str]:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    match = TOOL_VERSION.search(out.stdout)
    if out.returncode != 0 or not match:
        raise OpsError(f"{path} --version did not report a PostgreSQL version: {out.stdout!r}")
    return int(match.group(1)), out.stdout.strip()


def run(args: list[str], env: Mapping[str, str], what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, env=dict(env), check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise OpsError(f"{what} failed (exit {done.returncode})", lines[-20:])
    return done


def libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URI for the command-line tools and their environment; the password goes in
    PGPASSWORD, never on a command line other users can read in `ps`."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def quote_pattern(schema: str) -> str:
    """A pg_dump/pg_restore pattern that matches exactly this schema name."""
    return '"' + schema.replace('"', '""') + '"'
