"""Restoring a PostgreSQL backup in one transaction that is checked before it commits.

pg_restore run against the database commits on its own, so a planted function or an
edited trail would be in place before anything could look at it. Instead pg_restore only
turns the archive into its SQL script (`--file=-`), and the script runs on this app's own
connection: dropping the old relations, creating the restored ones, loading table data
through COPY. Then, still inside that transaction, the restored schema is compared with
the migrations' (schema.py) and the data with the manifest and the anchor (vetting.py);
only when they agree is the transaction committed. Otherwise it is rolled back and the
target is exactly as it was.

Before any of that, the archive's table of contents is read: an archive holding functions,
triggers, views, rules, policies or any kind of object the migrations never create is
refused without touching the database.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path
from typing import IO

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from auditapp.errors import OpsError
from auditapp.services.ops import schema
from auditapp.services.ops.pgtools import TOOL_VERSION, libpq, major_version, require_tool, run
from auditapp.services.ops.vetting import Vetting

# pg_restore --list entries that create or describe the schema itself; the target schema
# already exists (or is created here), so they are left out.
_SCHEMA_TOC_ENTRY = re.compile(r"^\d+; \d+ \d+ (SCHEMA - |(COMMENT|ACL|SECURITY LABEL) - SCHEMA )")
_TOC_ENTRY = re.compile(r"^(\d+); (\d+) (\d+) (.*)$")
# What the app's migrations make pg_dump write; any other kind of entry is refused.
_TOC_ALLOWED = (
    "TABLE DATA",
    "TABLE",
    "SEQUENCE OWNED BY",
    "SEQUENCE SET",
    "SEQUENCE",
    "DEFAULT",
    "FK CONSTRAINT",
    "CONSTRAINT",
    "INDEX",
    "COMMENT",
)
# Kinds that start like an allowed one but are not.
_TOC_LOOKALIKES = ("TABLE ATTACH", "DEFAULT ACL", "INDEX ATTACH")
_COPY_START = re.compile(rb"COPY .+ FROM stdin;\n")
_PSQL_ALLOWED = (b"\\restrict ", b"\\unrestrict ")  # pg_restore's own guards in scripts
_COPY_BATCH = 1024 * 1024


def toc_problems(toc: str) -> list[str]:
    """Each entry of the archive's table of contents that is not a kind the migrations
    create (a function, trigger, view, rule, policy, extension, type ...)."""
    problems = []
    for line in toc.splitlines():
        match = _TOC_ENTRY.match(line)
        if not match or _SCHEMA_TOC_ENTRY.match(line):
            continue
        entry = match.group(4)
        if entry.startswith(_TOC_LOOKALIKES) or not any(
            entry.startswith(kind + " ") for kind in _TOC_ALLOWED
        ):
            problems.append(f"the dump holds {entry!r}: not a kind of object the migrations create")
    return problems


def _q(conn: Connection, name: str) -> str:
    """A quoted SQL identifier."""
    return conn.dialect.identifier_preparer.quote(name)


def _relations(conn: Connection, schema_name: str, kinds: str) -> list[str]:
    """Names of the relations of the given pg_class kinds in a schema."""
    return list(
        conn.scalars(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :schema AND c.relkind = ANY(:kinds) ORDER BY c.relname"
            ),
            {"schema": schema_name, "kinds": list(kinds)},
        )
    )


def _drop_relations(conn: Connection, schema_name: str) -> None:
    """Drop the tables, views and sequences of a schema, keeping the schema (its owner and
    grants stay as the administrator set them)."""
    # Views first (they depend on tables); owned sequences go with their tables.
    for kinds, keyword in (
        ("m", "MATERIALIZED VIEW"),
        ("v", "VIEW"),
        ("rp", "TABLE"),
        ("S", "SEQUENCE"),
    ):
        for name in _relations(conn, schema_name, kinds):
            conn.execute(
                text(f"DROP {keyword} IF EXISTS {_q(conn, schema_name)}.{_q(conn, name)} CASCADE")
            )


def _move_relations(conn: Connection, source: str, target: str) -> None:
    """Move every restored relation from `source` to `target`, then drop `source`.

    ALTER TABLE ... SET SCHEMA moves the table's indexes, constraints and owned sequences
    with it; column defaults name sequences by oid, so they keep working.
    """
    for kinds, keyword in (
        ("rp", "TABLE"),
        ("S", "SEQUENCE"),
        ("v", "VIEW"),
        ("m", "MATERIALIZED VIEW"),
    ):
        for name in _relations(conn, source, kinds):
            moved = f"{_q(conn, source)}.{_q(conn, name)}"
            conn.execute(text(f"ALTER {keyword} {moved} SET SCHEMA {_q(conn, target)}"))
    conn.execute(text(f"DROP SCHEMA {_q(conn, source)}"))  # RESTRICT: fails if anything is left


def _run_sql(cursor, lines: list[bytes]) -> None:
    statement = b"".join(lines).decode("utf-8")
    if statement.strip():
        cursor.execute(statement)


def _copy_rows(cursor, header: bytes, stream: IO[bytes]) -> None:
    """Feed one table's data lines (up to the `\\.` line) to its COPY statement."""
    with cursor.copy(header.decode("utf-8").rstrip().rstrip(";")) as copy:
        batch = bytearray()
        for row in stream:
            if row == b"\\.\n":
                break
            batch += row
            if len(batch) >= _COPY_BATCH:
                copy.write(batch)
                batch = bytearray()
        else:
            raise OpsError("the dump's script ends inside table data")
        if batch:
            copy.write(batch)


def _execute_script(conn: Connection, stream: IO[bytes]) -> None:
    """Run pg_restore's script on `conn`, inside its transaction: SQL as it comes, table
    data through COPY. No psql command other than pg_restore's own guards is accepted."""
    cursor = conn.connection.driver_connection.cursor()
    sql: list[bytes] = []
    for line in stream:
        if _COPY_START.fullmatch(line):
            _run_sql(cursor, sql)
            sql = []
            _copy_rows(cursor, line, stream)
        elif line.startswith(b"\\"):
            if not line.startswith(_PSQL_ALLOWED):
                raise OpsError(f"the dump's script holds a psql command: {line[:60]!r}")
        else:
            sql.append(line)
    _run_sql(cursor, sql)


def _load(conn: Connection, pg_restore: str, dump: Path, listing: Path, env: dict) -> None:
    """Stream `pg_restore --file=-` into `_execute_script`."""
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603 (a fixed program, arguments as a list)
            [
                pg_restore,
                "--no-owner",
                "--no-privileges",
                f"--use-list={listing}",
                "--file=-",
                str(dump),
            ],
            stdout=subprocess.PIPE,
            stderr=errors,
            env=env,
        )
        try:
            _execute_script(conn, process.stdout)
        finally:
            process.stdout.close()
            code = process.wait()
        if code != 0:
            errors.seek(0)
            lines = [ln for ln in errors.read().decode(errors="replace").splitlines() if ln]
            raise OpsError(f"pg_restore failed (exit {code})", lines[-20:])


def _check_tools(database: dict) -> str:
    """pg_restore, refused when older than the pg_dump that made the archive."""
    pg_restore = require_tool("pg_restore")
    tool_major, _ = major_version(pg_restore)
    dumped_by = TOOL_VERSION.search(database.get("pg_dump", ""))
    if dumped_by and tool_major < int(dumped_by.group(1)):
        raise OpsError(
            f"{pg_restore} is version {tool_major}; the backup was made by "
            f"{database['pg_dump']}: install that version's client programs"
        )
    return pg_restore


def _swap(conn: Connection, load, source: str) -> str:
    """Inside the open transaction: drop the target's relations and load the backup in
    their place (through a schema of the dumped name when the target is named otherwise).
    Returns the target schema."""
    target = conn.scalar(text("SELECT current_schema()"))
    if not target:
        raise OpsError("the database has no current schema (check search_path)")
    if source != target and conn.scalar(
        text("SELECT 1 FROM pg_namespace WHERE nspname = :s"), {"s": source}
    ):
        raise OpsError(
            f"the backup holds schema {source!r}, which already exists in the target "
            f"database; pg_restore cannot rename it into {target!r}: restore into a "
            f"database without that schema (or into a schema of that name)"
        )
    search_path = conn.scalar(text("SHOW search_path"))
    _drop_relations(conn, target)
    if source != target:
        conn.execute(text(f"CREATE SCHEMA {_q(conn, source)}"))
    try:
        load(conn)
    except conn.dialect.loaded_dbapi.Error as exc:
        first = (str(exc).strip().splitlines() or ["?"])[0]
        raise OpsError(f"the dump's script failed: {first}; nothing was restored") from None
    if source != target:
        _move_relations(conn, source, target)
    # The script empties search_path for its own session; the checks need it back.
    conn.execute(text("SELECT set_config('search_path', :p, false)"), {"p": search_path})
    return target


def restore_postgres(engine: Engine, dump: Path, vetting: Vetting, migrations_dir: str) -> str:
    """Restore the archive into the current schema in one transaction, committed only when
    the schema, the data and the audit trail pass (see the module docstring)."""
    database = vetting.manifest["database"]
    pg_restore = _check_tools(database)
    _uri, env = libpq(engine.url)
    # Read the archive's table of contents first: a dump this pg_restore cannot read, or
    # one holding objects the migrations never create, fails here, before anything is done.
    toc = run([pg_restore, "--list", str(dump)], env, "pg_restore --list").stdout
    refused = toc_problems(toc)
    if refused:
        raise OpsError("the backup was refused; nothing was restored", refused)
    reference = schema.pg_reference(engine, migrations_dir, vetting.revision)
    with tempfile.TemporaryDirectory() as tmp, engine.connect() as conn:
        listing = Path(tmp) / "toc.list"
        listing.write_text(
            "".join(line + "\n" for line in toc.splitlines() if not _SCHEMA_TOC_ENTRY.match(line)),
            encoding="utf-8",
        )
        try:
            target = _swap(
                conn, lambda c: _load(c, pg_restore, dump, listing, env), database["schema"]
            )
            actual = schema.pg_describe(conn, target)
            problems = schema.pg_problems(actual, reference, vetting.revision)
            if not problems:
                with Session(bind=conn) as session:
                    problems = vetting.problems(session)
            if problems:
                raise OpsError("the backup was refused; nothing was restored", problems)
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            conn.invalidate()  # its session settings came from the script
    return f"schema {target}"
