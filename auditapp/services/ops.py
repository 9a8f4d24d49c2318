"""Operations: a consistent backup (database, evidence files, manifest), its restore, and
the health report behind `auditapp doctor`.

A backup folder holds:

    manifest.json          what was copied and how to check it; written last, so a folder
                           without it is an interrupted backup
    database.sqlite3       SQLite: a copy made with the online backup API
    database.pgdump        PostgreSQL: `pg_dump -Fc` of the app's schema
    evidence/ab/<sha256>   every evidence file the copied rows refer to

The manifest's numbers (row counts, audit-chain head, evidence hashes) are read from the
same snapshot the copy was made from: on SQLite from the copy itself, on PostgreSQL inside
the repeatable-read transaction whose snapshot pg_dump is given. Files are copied after
the snapshot, and only those its rows refer to, so an upload committed meanwhile is left
out together with its row.
"""

from __future__ import annotations

import enum
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from auditapp.errors import DomainError
from auditapp.models import AuditEvent, Evidence, EvidenceStatus
from auditapp.models.types import utcnow
from auditapp.services import audit, dashboard
from auditapp.services import evidence as evidence_service
from auditapp.storage import CHUNK_SIZE, BlobMissing, EvidenceStore, check_hash

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
EVIDENCE_DIR = "evidence"
# Alembic's own table: it holds the revision, not data, so it does not make a database
# "not empty" (a schema made by `auditapp db upgrade` is still a valid restore target).
_ALEMBIC_TABLE = "alembic_version"
# pg_restore --list entries that create or describe the schema itself; the target schema
# already exists (or is created here), so they are left out.
_SCHEMA_TOC_ENTRY = re.compile(r"^\d+; \d+ \d+ (SCHEMA - |(COMMENT|ACL|SECURITY LABEL) - SCHEMA )")
_TOOL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)")


class OpsError(DomainError):
    """A backup or restore cannot go on, or its result does not match the manifest;
    `problems` lists each thing found wrong (one line each)."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or []


# The snapshot: what the copied database holds -----------------------------------------


@dataclass
class Snapshot:
    """The numbers a manifest records about one database state."""

    revision: str | None
    row_counts: dict[str, int]
    audit_entries: int
    audit_head: str
    evidence: list[str] = field(default_factory=list)  # hashes of the live evidence rows


def row_counts(session: Session) -> dict[str, int]:
    """Rows in every table of the database (the current schema on PostgreSQL)."""
    names = sorted(sa.inspect(session.connection()).get_table_names())
    return {
        name: session.scalar(select(func.count()).select_from(sa.table(name))) or 0
        for name in names
    }


def _snapshot(session: Session) -> Snapshot:
    counts = row_counts(session)
    revision = None
    if _ALEMBIC_TABLE in counts:
        # Several rows only with branched migrations; never rolls back (unlike
        # dashboard.migration_revision), so the snapshot transaction stays usable.
        found = session.scalars(text("SELECT version_num FROM alembic_version")).all()
        revision = ",".join(sorted(found)) or None
    hashes = session.scalars(
        select(Evidence.sha256)
        .where(Evidence.status != EvidenceStatus.PURGED.value)
        .distinct()
        .order_by(Evidence.sha256)
    ).all()
    return Snapshot(
        revision=revision,
        row_counts=counts,
        audit_entries=session.scalar(select(func.count()).select_from(AuditEvent)) or 0,
        audit_head=audit.head(session),
        evidence=list(hashes),
    )


# Files --------------------------------------------------------------------------------


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _create_private(path: Path) -> int:
    """A new file readable by its owner only (backups hold personal data); fails if present."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def _backup_blob_path(folder: Path, sha256: str) -> Path:
    return folder / EVIDENCE_DIR / sha256[:2] / sha256


def _copy_blob(store: EvidenceStore, sha256: str, dest: Path) -> int:
    """Stream one stored file into the backup, re-hashing it; returns its size."""
    dest.parent.mkdir(mode=0o700, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with store.open(sha256) as source, open(_create_private(dest), "wb") as target:
        while chunk := source.read(CHUNK_SIZE):
            digest.update(chunk)
            target.write(chunk)
            size += len(chunk)
        target.flush()
        os.fsync(target.fileno())
    if digest.hexdigest() != sha256:
        raise OpsError(
            f"evidence file {sha256} is altered in the store (its bytes hash to "
            f"{digest.hexdigest()}); run `auditapp evidence verify`"
        )
    return size


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OpsError(f"{out} is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise OpsError(f"{out} is not empty; back up into a new or empty folder")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)


def _empty_folder(out: Path) -> None:
    """Remove what an interrupted backup wrote (the folder was empty when it began)."""
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


# PostgreSQL tools ---------------------------------------------------------------------


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


def _tool_major(path: str) -> tuple[int, str]:
    out = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    match = _TOOL_VERSION.search(out.stdout)
    if out.returncode != 0 or not match:
        raise OpsError(f"{path} --version did not report a PostgreSQL version: {out.stdout!r}")
    return int(match.group(1)), out.stdout.strip()


def _run(args: list[str], env: Mapping[str, str], what: str) -> subprocess.CompletedProcess:
    done = subprocess.run(args, capture_output=True, text=True, env=dict(env), check=False)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise OpsError(f"{what} failed (exit {done.returncode})", lines[-20:])
    return done


def _libpq(url: URL) -> tuple[str, dict[str, str]]:
    """A libpq URI for the command-line tools and their environment; the password goes in
    PGPASSWORD, never on a command line other users can read in `ps`."""
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    uri = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return uri, env


def _quote_pattern(schema: str) -> str:
    """A pg_dump/pg_restore pattern that matches exactly this schema name."""
    return '"' + schema.replace('"', '""') + '"'


# Backup -------------------------------------------------------------------------------


def _dump_sqlite(path: str, dest: Path, busy_timeout_s: float) -> Snapshot:
    """Copy with the online backup API (one consistent read), then read the copy."""
    os.close(_create_private(dest))  # an empty file is a new database to SQLite
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
    engine = sa.create_engine(
        "sqlite://",
        creator=lambda: sqlite3.connect(f"{dest.resolve().as_uri()}?mode=ro", uri=True),
        poolclass=NullPool,
    )
    try:
        with Session(engine) as session:
            return _snapshot(session)
    finally:
        engine.dispose()


def _dump_postgres(engine: Engine, dest: Path, pg_dump: str) -> tuple[Snapshot, dict]:
    """pg_dump of the current schema, given the snapshot the manifest's numbers come from."""
    uri, env = _libpq(engine.url)
    tool_major, tool_version = _tool_major(pg_dump)
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
                snapshot = _snapshot(session)
            # The transaction stays open while pg_dump runs: its snapshot must live.
            _run(
                [
                    pg_dump,
                    "--format=custom",
                    f"--schema={_quote_pattern(schema)}",
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


def backup(
    session: Session,
    store: EvidenceStore,
    out: Path,
    *,
    actor: Any,
    app_version: str,
    busy_timeout_ms: int = 15000,
) -> dict:
    """Write a backup into `out` (new or empty) and record it in the audit trail; returns
    the manifest. On any failure the folder is emptied again and OpsError raised."""
    engine = session.get_bind()
    kind = engine.dialect.name
    if kind not in ("sqlite", "postgresql"):
        raise OpsError(f"backups of {kind} databases are not supported")
    pg_dump = require_tool("pg_dump") if kind == "postgresql" else None
    out = Path(out)
    _prepare_out(out)
    session.close()  # no transaction (nor SQLite write lock) held while copying files
    try:
        if kind == "sqlite":
            dump = out / SQLITE_FILE
            path = engine.url.database
            if not path or path == ":memory:":
                raise OpsError("an in-memory SQLite database cannot be backed up")
            snapshot = _dump_sqlite(path, dump, busy_timeout_ms / 1000)
            extra: dict = {}
        else:
            dump = out / PG_FILE
            snapshot, extra = _dump_postgres(engine, dump, pg_dump)
        dump_sha, dump_size = _sha256_file(dump)
        (out / EVIDENCE_DIR).mkdir(mode=0o700)
        files, problems = [], []
        for sha in snapshot.evidence:
            try:
                size = _copy_blob(store, sha, _backup_blob_path(out, sha))
            except BlobMissing:
                problems.append(f"missing: evidence file {sha} is not in the store")
                continue
            except OpsError as exc:
                problems.append(str(exc))
                continue
            files.append({"sha256": sha, "size": size})
        if problems:
            raise OpsError(
                f"{len(problems)} evidence file(s) could not be copied; nothing was kept",
                problems,
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
            "evidence": files,
        }
        _write_manifest(out, manifest)
    except BaseException:
        _empty_folder(out)
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
            "evidence_files": len(files),
        },
    )
    return manifest


def _write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / (MANIFEST + ".part")
    with open(_create_private(tmp), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.rename(out / MANIFEST)


# Restore ------------------------------------------------------------------------------


def read_manifest(folder: Path) -> dict:
    """The manifest of a backup folder, checked for shape; OpsError naming what is wrong."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise OpsError(f"{path} is missing: {folder} is not a complete backup")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpsError(f"{path}: not valid JSON ({exc})") from None
    problems = _manifest_problems(manifest)
    if problems:
        raise OpsError(f"{path} is not a valid manifest", problems)
    return manifest


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _manifest_problems(m: Any) -> list[str]:
    if not isinstance(m, dict):
        return ["the manifest is not a JSON object"]
    if m.get("format") != FORMAT:
        return [f"format: {m.get('format')!r} is not supported (this version reads {FORMAT})"]
    problems = []
    database = m.get("database")
    if not isinstance(database, dict) or database.get("kind") not in ("sqlite", "postgresql"):
        problems.append("database.kind: expected 'sqlite' or 'postgresql'")
    else:
        if not isinstance(database.get("sha256"), str) or not _is_count(database.get("size")):
            problems.append("database: sha256 and size are required")
        if database["kind"] == "postgresql" and not isinstance(database.get("schema"), str):
            problems.append("database.schema: required for a PostgreSQL backup")
        if not isinstance(database.get("pg_dump", ""), str):
            problems.append("database.pg_dump: expected the pg_dump version text")
    counts = m.get("row_counts")
    if not isinstance(counts, dict) or not all(
        isinstance(k, str) and _is_count(v) for k, v in counts.items()
    ):
        problems.append("row_counts: expected an object of table name -> row count")
    chain = m.get("audit_chain")
    if (
        not isinstance(chain, dict)
        or not _is_count(chain.get("entries"))
        or not isinstance(chain.get("head"), str)
    ):
        problems.append("audit_chain: expected entries (a count) and head (a hash)")
    files = m.get("evidence")
    if not isinstance(files, list):
        problems.append("evidence: expected a list of {sha256, size}")
    else:
        for i, entry in enumerate(files):
            try:
                check_hash(entry["sha256"])
                if not _is_count(entry["size"]):
                    raise ValueError("size")
            except (TypeError, KeyError, ValueError):
                problems.append(f"evidence[{i}]: expected sha256 (64 hex digits) and size")
    return problems


def _backup_problems(folder: Path, manifest: dict) -> list[str]:
    """Re-hash the dump and every evidence file of the backup against the manifest."""
    problems = []
    database = manifest["database"]
    dump = folder / (SQLITE_FILE if database["kind"] == "sqlite" else PG_FILE)
    if not dump.is_file():
        problems.append(f"{dump.name}: missing from the backup")
    else:
        sha, size = _sha256_file(dump)
        if (sha, size) != (database["sha256"], database["size"]):
            problems.append(
                f"{dump.name}: altered (sha256 {sha}, {size} bytes; the manifest says "
                f"{database['sha256']}, {database['size']} bytes)"
            )
    for entry in manifest["evidence"]:
        path = _backup_blob_path(folder, entry["sha256"])
        name = path.relative_to(folder)
        if not path.is_file():
            problems.append(f"{name}: evidence file missing from the backup")
            continue
        sha, size = _sha256_file(path)
        if sha != entry["sha256"] or size != entry["size"]:
            problems.append(
                f"{name}: evidence file altered (its bytes hash to {sha}, {size} bytes)"
            )
    return problems


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
    problems = _backup_problems(folder, manifest)
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
        with _backup_blob_path(folder, entry["sha256"]).open("rb") as f:
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
    filled = {t: n for t, n in row_counts(session).items() if n and t != _ALEMBIC_TABLE}
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
    tool_major, _ = _tool_major(pg_restore)
    dumped_by = _TOOL_VERSION.search(database.get("pg_dump", ""))
    if dumped_by and tool_major < int(dumped_by.group(1)):
        raise OpsError(
            f"{pg_restore} is version {tool_major}; the backup was made by "
            f"{database['pg_dump']}: install that version's client programs"
        )
    uri, env = _libpq(engine.url)
    source = database["schema"]
    # Read the archive's table of contents first: a dump this pg_restore cannot read fails
    # here, before anything is dropped.
    toc = _run([pg_restore, "--list", str(dump)], env, "pg_restore --list").stdout
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
            _run(
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


# Doctor -------------------------------------------------------------------------------


class Health(enum.StrEnum):
    """How one doctor check came out."""

    OK = "OK"
    WARN = "WARN"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Diagnosis:
    """One line of the doctor's report."""

    status: Health
    name: str
    detail: str


# The value instance/config.example.py ships with.
EXAMPLE_SECRET_KEY = "change-me-to-a-long-random-string"  # noqa: S105
MIN_SECRET_KEY_LENGTH = 32
LOW_DISK_BYTES = 1024**3
TICK_STALE_AFTER = timedelta(days=2)
_GIB = 1024**3


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def check_config(config: Mapping[str, Any]) -> list[Diagnosis]:
    """Secret key, cookie security against BASE_URL, debug mode."""
    found = []
    key = config.get("SECRET_KEY")
    if not key:
        found.append(Diagnosis(Health.FAIL, "secret key", "SECRET_KEY is not set"))
    elif key == EXAMPLE_SECRET_KEY:
        found.append(
            Diagnosis(
                Health.FAIL,
                "secret key",
                "SECRET_KEY is the example value from instance/config.example.py; set a random "
                "one: python3 -c 'import secrets; print(secrets.token_hex(32))'",
            )
        )
    elif len(str(key)) < MIN_SECRET_KEY_LENGTH:
        found.append(
            Diagnosis(
                Health.WARN,
                "secret key",
                f"SECRET_KEY is short ({len(str(key))} characters); use at least "
                f"{MIN_SECRET_KEY_LENGTH} random characters",
            )
        )
    else:
        found.append(Diagnosis(Health.OK, "secret key", f"set ({len(str(key))} characters)"))
    https = str(config.get("BASE_URL") or "").lower().startswith("https://")
    secure = bool(config.get("SESSION_COOKIE_SECURE"))
    if https and not secure:
        found.append(
            Diagnosis(
                Health.WARN,
                "session cookies",
                "BASE_URL is https but SESSION_COOKIE_SECURE is off; set "
                "SESSION_COOKIE_SECURE = True so cookies never travel over plain http",
            )
        )
    elif secure:
        found.append(Diagnosis(Health.OK, "session cookies", "Secure, HttpOnly, SameSite"))
    else:
        found.append(
            Diagnosis(
                Health.OK,
                "session cookies",
                "BASE_URL is http (set SESSION_COOKIE_SECURE = True when serving over HTTPS)",
            )
        )
    if config.get("DEBUG"):
        found.append(Diagnosis(Health.WARN, "debug", "DEBUG is on; never in production"))
    return found


def migration_heads(migrations_dir: str) -> tuple[list[str], set[str]]:
    """The head revision(s) of the migrations folder and every revision it knows."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", migrations_dir)
    script = ScriptDirectory.from_config(cfg)
    return list(script.get_heads()), {s.revision for s in script.walk_revisions()}


def _check_migrations(session: Session, migrations_dir: str) -> Diagnosis:
    heads, known = migration_heads(migrations_dir)
    current = dashboard.migration_revision(session)
    head_text = ", ".join(heads)
    if current is None:
        return Diagnosis(
            Health.FAIL,
            "migrations",
            f"the database has no migration revision (head is {head_text}); run `auditapp init`",
        )
    if current in heads:
        return Diagnosis(Health.OK, "migrations", f"at the head revision {current}")
    if current in known:
        return Diagnosis(
            Health.FAIL,
            "migrations",
            f"at {current}, behind the head {head_text}; run `auditapp init` (upgrades the "
            f"schema) after a backup",
        )
    return Diagnosis(
        Health.FAIL,
        "migrations",
        f"at {current}, a revision this code does not know (head {head_text}); is the code "
        f"older than the database?",
    )


def _check_evidence_folder(store: EvidenceStore, path: str) -> list[Diagnosis]:
    found = []
    try:
        pending = store.begin()
        try:
            pending.write(b"doctor")
        finally:
            store.abort(pending)
        found.append(Diagnosis(Health.OK, "evidence folder", f"writable: {path}"))
    except OSError as exc:
        found.append(Diagnosis(Health.FAIL, "evidence folder", f"cannot write to {path}: {exc}"))
    try:
        free = shutil.disk_usage(path).free
    except OSError as exc:
        found.append(Diagnosis(Health.FAIL, "disk space", f"cannot read free space: {exc}"))
        return found
    status = Health.WARN if free < LOW_DISK_BYTES else Health.OK
    detail = f"{free / _GIB:.1f} GiB free for evidence"
    if status is Health.WARN:
        detail += f" (under {LOW_DISK_BYTES // _GIB} GiB: uploads will soon fail)"
    found.append(Diagnosis(status, "disk space", detail))
    return found


def _check_lock(holder: Any, now: datetime) -> Diagnosis:
    if holder is None:
        return Diagnosis(
            Health.WARN,
            "scheduler lock",
            "no scheduler has ever run; start `auditapp scheduler` (its own process)",
        )
    if holder.lease_until > now:
        return Diagnosis(
            Health.OK,
            "scheduler lock",
            f"held by {holder.holder} (lease until {_when(holder.lease_until)})",
        )
    return Diagnosis(
        Health.WARN,
        "scheduler lock",
        f"not held since {_when(holder.lease_until)} (last holder {holder.holder}); is "
        f"`auditapp scheduler` running?",
    )


def _check_last_run(run: Any, now: datetime) -> Diagnosis:
    if run is None or run.finished_at is None:
        return Diagnosis(Health.WARN, "scheduled jobs", "no successful run recorded yet")
    age = now - run.finished_at
    detail = f"last successful run {_when(run.finished_at)} ({run.job_id})"
    if age > TICK_STALE_AFTER:
        return Diagnosis(
            Health.WARN, "scheduled jobs", f"{detail}, {age.days} days ago; jobs run daily"
        )
    return Diagnosis(Health.OK, "scheduled jobs", detail)


def _check_audit(session: Session) -> Diagnosis:
    report = audit.verify(session)
    if report.ok:
        return Diagnosis(
            Health.OK, "audit chain", f"intact: {report.count} entries, head {report.head}"
        )
    return Diagnosis(
        Health.FAIL,
        "audit chain",
        f"broken at entry {report.broken_id}: {report.problem} ({report.count} entries "
        f"verified before it)",
    )


def _check_evidence_files(session: Session, store: EvidenceStore) -> Diagnosis:
    report = evidence_service.verify(session, store)
    named = [f"missing: evidence {i} ({sha})" for i, sha in report.missing]
    named += [f"altered: evidence {i} ({sha})" for i, sha in report.altered]
    if named:
        shown = "; ".join(named[:5]) + (f"; and {len(named) - 5} more" if len(named) > 5 else "")
        return Diagnosis(
            Health.FAIL,
            "evidence files",
            f"{len(report.missing)} missing, {len(report.altered)} altered of "
            f"{report.checked}: {shown}",
        )
    if report.orphaned:
        return Diagnosis(
            Health.WARN,
            "evidence files",
            f"{report.checked} verified; {len(report.orphaned)} file(s) belong to no evidence "
            f"item (`auditapp evidence verify` lists them)",
        )
    return Diagnosis(Health.OK, "evidence files", f"{report.checked} files verified")


def doctor(
    session: Session,
    store: EvidenceStore,
    *,
    config: Mapping[str, Any],
    migrations_dir: str,
    lock_holder: Callable[[Session], Any],
    last_run: Callable[[Session], Any],
    full: bool = False,
    now: datetime | None = None,
) -> list[Diagnosis]:
    """Every health check, one Diagnosis each. `lock_holder` and `last_run` read the
    scheduler's state (passed in: services do not import the scheduler)."""
    now = now or utcnow()
    found = check_config(config)
    engine = session.get_bind()
    try:
        session.execute(text("SELECT 1"))
        where = engine.url.render_as_string(hide_password=True)
        if engine.dialect.name == "postgresql":
            where += f" (schema {session.scalar(text('SELECT current_schema()'))})"
        found.append(Diagnosis(Health.OK, "database", f"reachable: {where}"))
        reachable = True
    except SQLAlchemyError as exc:
        session.rollback()
        first = str(exc.orig if getattr(exc, "orig", None) else exc).strip().splitlines()[0]
        found.append(Diagnosis(Health.FAIL, "database", f"unreachable: {first}"))
        reachable = False
    if reachable:
        found.append(
            _guarded(session, "migrations", lambda: _check_migrations(session, migrations_dir))
        )
    found += _check_evidence_folder(store, str(config.get("EVIDENCE_PATH")))
    if not reachable:
        return found
    checks: list[tuple[str, Callable[[], Diagnosis]]] = [
        ("scheduler lock", lambda: _check_lock(lock_holder(session), now)),
        ("scheduled jobs", lambda: _check_last_run(last_run(session), now)),
        ("audit chain", lambda: _check_audit(session)),
    ]
    if full:
        checks.append(("evidence files", lambda: _check_evidence_files(session, store)))
    for name, run in checks:
        found.append(_guarded(session, name, run))
    return found


def _guarded(session: Session, name: str, run: Callable[[], Diagnosis]) -> Diagnosis:
    """Run one check; a database error (a missing table, say) is that check's FAIL."""
    try:
        result = run()
    except SQLAlchemyError as exc:
        session.rollback()
        first = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return Diagnosis(Health.FAIL, name, f"database error: {first}")
    session.rollback()  # read-only: end the transaction (and SQLite's lock) at once
    return result
