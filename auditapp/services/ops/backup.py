"""`auditapp backup`: a consistent copy of the database, its evidence files and a manifest.

The manifest's numbers (row counts, audit-chain head, evidence hashes) are read from the
same snapshot the copy was made from: on SQLite from the copy itself, on PostgreSQL inside
the repeatable-read transaction whose snapshot pg_dump is given. Files are copied after
the snapshot, and only those its rows refer to, so an upload committed meanwhile is left
out together with its row.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditapp.errors import OpsError
from auditapp.models.types import utcnow
from auditapp.services import audit
from auditapp.services.ops.files import (
    EVIDENCE_DIR,
    FORMAT,
    PG_FILE,
    SQLITE_FILE,
    backup_blob_path,
    copy_blob,
    create_private,
    empty_folder,
    prepare_out,
    sign_manifest,
    write_manifest,
)
from auditapp.services.ops.pgtools import libpq, major_version, quote_pattern, require_tool, run
from auditapp.services.ops.snapshot import Snapshot, readonly_sqlite, take_snapshot
from auditapp.storage import BlobMissing, EvidenceStore, sha256_file


def _dump_sqlite(path: str, dest: Path, busy_timeout_s: float) -> Snapshot:
    """Copy with the online backup API (one consistent read), then read the copy."""
    os.close(create_private(dest))  # an empty file is a new database to SQLite
    source_uri = f"{Path(path).resolve().as_uri()}?mode=rw"  # rw: never create a new file
    try:
        with (
            closing(sqlite3.connect(source_uri, uri=True, timeout=busy_timeout_s)) as source,
            closing(sqlite3.connect(dest)) as target,
        ):
            source.backup(target)
            # A self-contained file: no -wal/-shm beside it, whatever mode the source used.
            target.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        raise OpsError(f"the SQLite backup of {path} failed: {exc}") from None
    engine = readonly_sqlite(dest)
    try:
        with Session(engine) as session:
            return take_snapshot(session)
    finally:
        engine.dispose()


def _dump_postgres(engine: Engine, dest: Path, pg_dump: str) -> tuple[Snapshot, dict]:
    """pg_dump of the current schema, given the snapshot the manifest's numbers come from."""
    uri, env = libpq(engine.url)
    tool_major, tool_version = major_version(pg_dump)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            schema = conn.scalar(text("SELECT current_schema()"))
            if not schema:
                raise OpsError("the database has no current schema (check search_path)")
            server = conn.scalar(text("SHOW server_version"))
            server_major = int(conn.scalar(text("SHOW server_version_num"))) // 10000
            if tool_major < server_major:
                raise OpsError(
                    f"{pg_dump} is version {tool_major}, older than the server ({server}); "
                    f"install postgresql-client-{server_major}"
                )
            snapshot_id = conn.scalar(text("SELECT pg_export_snapshot()"))
            with Session(bind=conn) as session:
                snapshot = take_snapshot(session)
            # The transaction stays open while pg_dump runs: its snapshot must live.
            run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--schema={quote_pattern(schema)}",
                    f"--snapshot={snapshot_id}",
                    "--no-password",
                    f"--file={dest}",
                    f"--dbname={uri}",
                ],
                env,
                "pg_dump",
            )
    os.chmod(dest, 0o600)
    return snapshot, {"schema": schema, "server_version": server, "pg_dump": tool_version}


def _dump(engine: Engine, out: Path, busy_timeout_ms: int) -> tuple[Path, Snapshot, dict]:
    """Copy the database into the folder; its snapshot and what the manifest says of it."""
    if engine.dialect.name == "sqlite":
        dump = out / SQLITE_FILE
        path = engine.url.database
        if not path or path == ":memory:":
            raise OpsError("an in-memory SQLite database cannot be backed up")
        return dump, _dump_sqlite(path, dump, busy_timeout_ms / 1000), {}
    dump = out / PG_FILE
    snapshot, extra = _dump_postgres(engine, dump, require_tool("pg_dump"))
    return dump, snapshot, extra


def _copy_evidence(store: EvidenceStore, out: Path, hashes: list[str]) -> list[dict]:
    """Copy every evidence file the snapshot refers to; OpsError listing any that fail."""
    (out / EVIDENCE_DIR).mkdir(mode=0o700)
    files, problems = [], []
    for sha in hashes:
        try:
            size = copy_blob(store, sha, backup_blob_path(out, sha))
        except BlobMissing:
            problems.append(f"missing: evidence file {sha} is not in the store")
            continue
        except OpsError as exc:
            problems.append(str(exc))
            continue
        files.append({"sha256": sha, "size": size})
    if problems:
        raise OpsError(
            f"{len(problems)} evidence file(s) could not be copied; nothing was kept", problems
        )
    return files


def backup(
    session: Session,
    store: EvidenceStore,
    out: Path,
    *,
    actor: Any,
    app_version: str,
    anchor: audit.Anchor,
    busy_timeout_ms: int = 15000,
) -> dict:
    """Write a backup into `out` (new or empty) and record it in the audit trail; returns
    the manifest. On any failure the folder is emptied again and OpsError raised.

    The manifest holds a signed checkpoint of the copied trail (also appended to the
    instance's checkpoint file) and is itself signed with the audit key, so `restore`
    can refuse a backup edited after it was made.
    """
    engine = session.get_bind()
    kind = engine.dialect.name
    if kind not in ("sqlite", "postgresql"):
        raise OpsError(f"backups of {kind} databases are not supported")
    if kind == "postgresql":
        require_tool("pg_dump")  # before anything is written
    keys = anchor.signing_keys()
    out = Path(out)
    prepare_out(out)
    session.close()  # no transaction (nor SQLite write lock) held while copying files
    try:
        dump, snapshot, extra = _dump(engine, out, busy_timeout_ms)
        dump_sha, dump_size = sha256_file(dump)
        files = _copy_evidence(store, out, snapshot.evidence)
        point = anchor.append(
            keys, entries=snapshot.audit_entries, head=snapshot.audit_head, reason="backup"
        )
        manifest = {
            "format": FORMAT,
            "created_at": utcnow().isoformat(timespec="seconds"),
            "app_version": app_version,
            "database": {
                "kind": kind,
                "file": dump.name,
                "sha256": dump_sha,
                "size": dump_size,
                **extra,
            },
            "migration_revision": snapshot.revision,
            "row_counts": snapshot.row_counts,
            "audit_chain": {"entries": snapshot.audit_entries, "head": snapshot.audit_head},
            "audit_checkpoint": point.to_json(),
            "evidence": files,
        }
        manifest = sign_manifest(manifest, keys)
        write_manifest(out, manifest)
    except BaseException:
        empty_folder(out)
        raise
    # Like a download, a backup hands out every file; the trail says who took one.
    audit.record(
        session,
        actor=actor,
        action="backup.create",
        object_type="backup",
        object_id=None,
        after={
            "folder": str(out.resolve()),
            "database": kind,
            "dump_sha256": dump_sha,
            "rows": sum(snapshot.row_counts.values()),
            "audit_head": snapshot.audit_head,
            "audit_checkpoint": point.signature,
            "evidence_files": len(files),
        },
    )
    return manifest
