"""`auditapp restore`: put a backup in place and verify it against its manifest."""

from __future__ import annotations

import re
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from auditapp.errors import OpsError
from auditapp.models import AuditEvent
from auditapp.services import audit
from auditapp.services.ops.files import (
    PG_FILE,
    SQLITE_FILE,
    backup_blob_path,
    backup_problems,
    read_manifest,
)
from auditapp.services.ops.pgtools import TOOL_VERSION, libpq, major_version, require_tool, run
from auditapp.services.ops.snapshot import ALEMBIC_TABLE, row_counts
from auditapp.storage import EvidenceStore

# pg_restore --list entries that create or describe the schema itself; the target schema
# already exists (or is created here), so they are left out.
_SCHEMA_TOC_ENTRY = re.compile(r"^\d+; \d+ \d+ (SCHEMA - |(COMMENT|ACL|SECURITY LABEL) - SCHEMA )")


@dataclass
class RestoreResult:
    """What a verified restore put in place."""

    kind: str
    target: str
    rows: int
    tables: int
    revision: str | None
    audit_entries: int
    audit_head: str
    evidence_files: int
    foreign_files: int  # files already in the store that the backup does not hold


def restore(session: Session, store: EvidenceStore, folder: Path, *, force: bool) -> RestoreResult:
    """Restore a backup into this app's database and evidence store, then verify row counts,
    the audit-chain head and every evidence hash against the manifest.

    The target must be empty (tables may exist, without rows) unless `force`. The backup is
    re-hashed before anything is touched, so a damaged backup changes nothing.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    engine = session.get_bind()
    kind = engine.dialect.name
    if manifest["database"]["kind"] != kind:
        raise OpsError(
            f"this is a backup of a {manifest['database']['kind']} database; the configured "
            f"database is {kind}"
        )
    if not force:
        _refuse_non_empty(session, store)
    session.close()
    problems = backup_problems(folder, manifest)
    if problems:
        raise OpsError("the backup is damaged; nothing was restored", problems)

    if kind == "sqlite":
        target = _restore_sqlite(engine, folder / SQLITE_FILE)
    else:
        target = _restore_postgres(engine, folder / PG_FILE, manifest["database"])
    engine.dispose()  # connections opened before the restore must not linger

    wanted = {entry["sha256"] for entry in manifest["evidence"]}
    foreign = sum(1 for sha in store.iter_hashes() if sha not in wanted)
    problems = []
    for entry in manifest["evidence"]:
        with backup_blob_path(folder, entry["sha256"]).open("rb") as f:
            stored = store.put_stream(f)
        if stored.sha256 != entry["sha256"]:
            problems.append(f"evidence {entry['sha256']}: stored as {stored.sha256}")
    problems += _verify_against(session, store, manifest)
    if problems:
        raise OpsError(
            "the restored data does not match the backup's manifest; do not use it", problems
        )
    counts = manifest["row_counts"]
    return RestoreResult(
        kind=kind,
        target=target,
        rows=sum(counts.values()),
        tables=len(counts),
        revision=manifest.get("migration_revision"),
        audit_entries=manifest["audit_chain"]["entries"],
        audit_head=manifest["audit_chain"]["head"],
        evidence_files=len(manifest["evidence"]),
        foreign_files=foreign,
    )


def _refuse_non_empty(session: Session, store: EvidenceStore) -> None:
    filled = {t: n for t, n in row_counts(session).items() if n and t != ALEMBIC_TABLE}
    session.rollback()
    if filled:
        shown = ", ".join(f"{t} ({n} rows)" for t, n in sorted(filled.items())[:5])
        more = f" and {len(filled) - 5} more tables" if len(filled) > 5 else ""
        raise OpsError(
            f"the database is not empty: {shown}{more}; restore into an empty database, "
            f"or pass --force to replace its contents"
        )
    stored = sum(1 for _ in store.iter_hashes())
    if stored:
        raise OpsError(
            f"the evidence store already holds {stored} file(s); restore into an empty "
            f"evidence folder, or pass --force"
        )


def _restore_sqlite(engine: Engine, copy: Path) -> str:
    """Copy the backup into the configured database file with the backup API (one
    transaction on the target: it holds either the old or the whole restored data)."""
    path = engine.url.database
    if not path or path == ":memory:":
        raise OpsError("the configured database is in memory; restore needs a database file")
    engine.dispose()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        with (
            closing(sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro", uri=True)) as source,
            closing(sqlite3.connect(path, timeout=30)) as target,
        ):
            source.backup(target)
    except sqlite3.Error as exc:
        raise OpsError(f"copying the backup into {path} failed: {exc}") from None
    return path


def _relations(conn: Connection, schema: str, kinds: str) -> list[str]:
    """Names of the relations of the given pg_class kinds in a schema."""
    return list(
        conn.scalars(
            text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = :schema AND c.relkind = ANY(:kinds) ORDER BY c.relname"
            ),
            {"schema": schema, "kinds": list(kinds)},
        )
    )


def _restore_postgres(engine: Engine, dump: Path, database: dict) -> str:
    """pg_restore into the current schema, after dropping what it holds.

    pg_restore cannot rename a schema: objects land in the schema they were dumped from.
    When the target schema has another name, the dump is restored into a schema of the
    old name (which must not exist in the target database) and its tables are moved over.
    """
    pg_restore = require_tool("pg_restore")
    tool_major, _ = major_version(pg_restore)
    dumped_by = TOOL_VERSION.search(database.get("pg_dump", ""))
    if dumped_by and tool_major < int(dumped_by.group(1)):
        raise OpsError(
            f"{pg_restore} is version {tool_major}; the backup was made by "
            f"{database['pg_dump']}: install that version's client programs"
        )
    uri, env = libpq(engine.url)
    source = database["schema"]
    # Read the archive's table of contents first: a dump this pg_restore cannot read fails
    # here, before anything is dropped.
    toc = run([pg_restore, "--list", str(dump)], env, "pg_restore --list").stdout
    with engine.begin() as conn:
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
        _drop_relations(conn, target)
        if source != target:
            conn.execute(text(f"CREATE SCHEMA {_q(conn, source)}"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            listing = Path(tmp) / "toc.list"
            listing.write_text(
                "".join(
                    line + "\n" for line in toc.splitlines() if not _SCHEMA_TOC_ENTRY.match(line)
                ),
                encoding="utf-8",
            )
            run(
                [
                    pg_restore,
                    "--no-owner",
                    "--no-privileges",
                    "--exit-on-error",
                    "--single-transaction",
                    "--no-password",
                    f"--use-list={listing}",
                    f"--dbname={uri}",
                    str(dump),
                ],
                env,
                "pg_restore",
            )
        if source != target:
            with engine.begin() as conn:
                _move_relations(conn, source, target)
    except BaseException:
        if source != target:
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {_q(conn, source)} CASCADE"))
        raise
    return f"schema {target}"


def _q(conn: Connection, name: str) -> str:
    """A quoted SQL identifier."""
    return conn.dialect.identifier_preparer.quote(name)


def _drop_relations(conn: Connection, schema: str) -> None:
    """Drop the tables, views and sequences of a schema, keeping the schema (its owner and
    grants stay as the administrator set them)."""
    # Views first (they depend on tables); owned sequences go with their tables.
    for kinds, keyword in (
        ("m", "MATERIALIZED VIEW"),
        ("v", "VIEW"),
        ("rp", "TABLE"),
        ("S", "SEQUENCE"),
    ):
        for name in _relations(conn, schema, kinds):
            conn.execute(
                text(f"DROP {keyword} IF EXISTS {_q(conn, schema)}.{_q(conn, name)} CASCADE")
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


def _verify_against(session: Session, store: EvidenceStore, manifest: dict) -> list[str]:
    """Differences between the restored data and the manifest (empty when they agree)."""
    problems = []
    expected: dict[str, int] = manifest["row_counts"]
    actual = row_counts(session)
    for table in sorted(set(expected) | set(actual)):
        if table not in actual:
            problems.append(f"table {table}: in the manifest but not in the restored database")
        elif table not in expected:
            problems.append(f"table {table}: in the restored database but not in the manifest")
        elif actual[table] != expected[table]:
            problems.append(
                f"table {table}: {actual[table]} rows restored, the manifest says {expected[table]}"
            )
    chain = manifest["audit_chain"]
    entries = session.scalar(select(func.count()).select_from(AuditEvent)) or 0
    head = audit.head(session)
    session.rollback()
    if entries != chain["entries"]:
        problems.append(
            f"audit chain: {entries} entries restored, the manifest says {chain['entries']}"
        )
    if head != chain["head"]:
        problems.append(f"audit chain: head {head}, the manifest says {chain['head']}")
    for entry in manifest["evidence"]:
        sha = entry["sha256"]
        outcome = store.verify(sha)
        if outcome != "ok":
            problems.append(f"evidence {sha}: {outcome} in the evidence store after restore")
        elif store.size(sha) != entry["size"]:
            problems.append(f"evidence {sha}: {store.size(sha)} bytes, manifest {entry['size']}")
    return problems
