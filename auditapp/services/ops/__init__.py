"""Operations: a consistent backup (database, evidence files, manifest), its restore, and
the health report behind `auditapp doctor`.

A backup folder holds:

    manifest.json          what was copied and how to check it, with a signed checkpoint
                           of the audit trail, all signed with the audit key; written
                           last, so a folder without it is an interrupted backup
    database.sqlite3       SQLite: a copy made with the online backup API
    database.pgdump        PostgreSQL: `pg_dump -Fc` of the app's schema
    evidence/ab/<sha256>   every evidence file the copied rows refer to

backup.py writes one; restore.py puts one in place after vetting.py (signature, data,
audit trail) and schema.py (the schema against the migrations) accept it, restore_pg.py
doing it on PostgreSQL in one checked transaction; doctor.py checks the instance. files.py
(the folder, read without following links, and its manifest), snapshot.py (what a
database holds) and pgtools.py (pg_dump, pg_restore) are shared by them.
"""

from __future__ import annotations

from auditapp.errors import OpsError
from auditapp.services.ops.backup import backup
from auditapp.services.ops.doctor import (
    EXAMPLE_SECRET_KEY,
    LOW_DISK_BYTES,
    MIN_SECRET_KEY_LENGTH,
    TICK_STALE_AFTER,
    Diagnosis,
    Health,
    check_config,
    doctor,
    migration_heads,
)
from auditapp.services.ops.files import (
    EVIDENCE_DIR,
    FORMAT,
    MANIFEST,
    PG_FILE,
    SQLITE_FILE,
    read_manifest,
)
from auditapp.services.ops.pgtools import require_tool
from auditapp.services.ops.restore import RestoreResult, restore
from auditapp.services.ops.snapshot import Snapshot, row_counts

__all__ = [
    "EVIDENCE_DIR",
    "EXAMPLE_SECRET_KEY",
    "FORMAT",
    "LOW_DISK_BYTES",
    "MANIFEST",
    "MIN_SECRET_KEY_LENGTH",
    "PG_FILE",
    "SQLITE_FILE",
    "TICK_STALE_AFTER",
    "Diagnosis",
    "Health",
    "OpsError",
    "RestoreResult",
    "Snapshot",
    "backup",
    "check_config",
    "doctor",
    "migration_heads",
    "read_manifest",
    "require_tool",
    "restore",
    "row_counts",
]
