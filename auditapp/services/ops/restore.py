"""`auditapp restore`: put a backup in place, but only one that passes every check.

Nothing in a backup folder is trusted (issue 11 item 6). In order, each step refusing
with the target untouched:

1. the manifest's signature under the instance's audit key (`--trust-unsigned` skips
   only this, for backups of older versions or whose key is lost);
2. the folder: no symbolic link, hard-linked or special file; the dump is copied into a
   private file while it is hashed, and every evidence file re-hashed, against the
   manifest;
3. the schema, compared with what the migrations create at the backup's revision: on
   SQLite on the private copy before it is put in place, on PostgreSQL inside the
   restoring transaction before it commits (restore_pg.py);
4. the data (vetting.py): migration revision, row counts, and the audit trail
   recomputed and held against the manifest's signed checkpoint and every checkpoint of
   this instance.

Then the evidence files are stored, everything is verified once more in place, and a
"restore" checkpoint anchors the restored trail.
"""

from __future__ import annotations

import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from auditapp.errors import OpsError
from auditapp.services import audit
from auditapp.services.ops import schema
from auditapp.services.ops.files import (
    SQLITE_FILE,
    BackupFolder,
    backup_problems,
    blob_name,
    copy_dump,
    dump_name,
    read_manifest,
)
from auditapp.services.ops.restore_pg import restore_postgres
from auditapp.services.ops.snapshot import ALEMBIC_TABLE, readonly_sqlite, row_counts
from auditapp.services.ops.vetting import Vetting, count_problems, work_dir_for
from auditapp.storage import EvidenceStore


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
    checkpoint: audit.Checkpoint | None = None  # the "restore" checkpoint written
    signed: bool = True  # False: restored on --trust-unsigned
    notes: list[str] = field(default_factory=list)


def restore(
    session: Session,
    store: EvidenceStore,
    folder: Path,
    *,
    force: bool,
    anchor: audit.Anchor,
    migrations_dir: str,
    trust_unsigned: bool = False,
) -> RestoreResult:
    """Restore a backup into this app's database and evidence store (see the module
    docstring for the checks), then verify row counts, the audit trail and every evidence
    hash in place against the manifest.

    The target must be empty (tables may exist, without rows) unless `force`.
    """
    engine = session.get_bind()
    kind = engine.dialect.name
    with BackupFolder(Path(folder)) as backup:
        manifest = read_manifest(backup)
        if manifest["database"]["kind"] != kind:
            raise OpsError(
                f"this is a backup of a {manifest['database']['kind']} database; the "
                f"configured database is {kind}"
            )
        revision = schema.check_revision(migrations_dir, manifest.get("migration_revision"))
        vetting = Vetting.prepare(manifest, anchor, revision, force=force, trust=trust_unsigned)
        if not force:
            _refuse_non_empty(session, store)
        session.close()
        target = _put_database(engine, backup, vetting, migrations_dir)
        engine.dispose()  # connections opened before the restore must not linger
        foreign, problems = _put_evidence(store, backup, manifest)
    problems += _verify_against(session, store, manifest)
    if problems:
        raise OpsError(
            "the restored data does not match the backup's manifest; do not use it", problems
        )
    point = vetting.anchor_restore(session, anchor)
    counts = manifest["row_counts"]
    return RestoreResult(
        kind=kind,
        target=target,
        rows=sum(counts.values()),
        tables=len(counts),
        revision=revision,
        audit_entries=manifest["audit_chain"]["entries"],
        audit_head=manifest["audit_chain"]["head"],
        evidence_files=len(manifest["evidence"]),
        foreign_files=foreign,
        checkpoint=point,
        signed=vetting.signed is not None,
        notes=vetting.notes,
    )


def _put_database(engine: Engine, backup: BackupFolder, vetting: Vetting, migrations: str) -> str:
    """Copy the dump out of the backup (hashing it), check it, and put it in place."""
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    with tempfile.TemporaryDirectory(prefix="auditapp-restore-", dir=work_dir_for(path)) as tmp:
        copy = Path(tmp) / dump_name(vetting.manifest)
        problems = copy_dump(backup, vetting.manifest, copy)
        problems += backup_problems(backup, vetting.manifest)
        if problems:
            raise OpsError("the backup is damaged; nothing was restored", problems)
        if engine.dialect.name == "sqlite":
            return _restore_sqlite(engine, copy, vetting, migrations)
        return restore_postgres(engine, copy, vetting, migrations)


def _put_evidence(
    store: EvidenceStore, backup: BackupFolder, manifest: dict
) -> tuple[int, list[str]]:
    """Store every evidence file of the backup; the number of files the store held that
    the backup does not, and any file stored under another hash."""
    wanted = {entry["sha256"] for entry in manifest["evidence"]}
    foreign = sum(1 for sha in store.iter_hashes() if sha not in wanted)
    problems = []
    for entry in manifest["evidence"]:
        with backup.open(blob_name(entry["sha256"])) as f:
            stored = store.put_stream(f)
        if stored.sha256 != entry["sha256"]:
            problems.append(f"evidence {entry['sha256']}: stored as {stored.sha256}")
    return foreign, problems


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


def _sqlite_problems(copy: Path, vetting: Vetting, migrations_dir: str) -> list[str]:
    """Everything wrong with the private copy: damage, a schema the migrations do not
    define (triggers, views, extra tables, indexes or columns), then the data."""
    with closing(sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro", uri=True)) as raw:
        try:
            damage = [row[0] for row in raw.execute("PRAGMA quick_check").fetchall()]
            actual = schema.sqlite_schema(raw)
        except sqlite3.DatabaseError as exc:
            return [f"{SQLITE_FILE}: not a readable SQLite database ({exc})"]
    if damage != ["ok"]:
        return [f"{SQLITE_FILE}: damaged ({'; '.join(damage[:5])})"]
    reference = schema.sqlite_reference(migrations_dir, vetting.revision, copy.parent)
    problems = schema.sqlite_problems(actual, reference, vetting.revision)
    if problems:
        return problems  # the data checks only read tables the migrations define
    engine = readonly_sqlite(copy)
    try:
        with Session(engine) as session:
            return vetting.problems(session)
    finally:
        engine.dispose()


def _restore_sqlite(engine: Engine, copy: Path, vetting: Vetting, migrations_dir: str) -> str:
    """Check the private copy, then copy it into the configured database file with the
    backup API (one transaction on the target: it holds either the old or the whole
    restored data)."""
    path = engine.url.database
    if not path or path == ":memory:":
        raise OpsError("the configured database is in memory; restore needs a database file")
    problems = _sqlite_problems(copy, vetting, migrations_dir)
    if problems:
        raise OpsError("the backup was refused; nothing was restored", problems)
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


def _verify_against(session: Session, store: EvidenceStore, manifest: dict) -> list[str]:
    """Differences between the restored data and the manifest (empty when they agree)."""
    problems = count_problems(row_counts(session), manifest["row_counts"])
    chain = manifest["audit_chain"]
    entries, head = audit.trail_state(session)
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
