"""The backup folder's files: names, private files, evidence copies, the manifest."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from auditapp.errors import OpsError
from auditapp.storage import CHUNK_SIZE, EvidenceStore, check_hash, sha256_file

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
EVIDENCE_DIR = "evidence"


def create_private(path: Path) -> int:
    """A new file readable by its owner only (backups hold personal data); fails if present."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def backup_blob_path(folder: Path, sha256: str) -> Path:
    return folder / EVIDENCE_DIR / sha256[:2] / sha256


def copy_blob(store: EvidenceStore, sha256: str, dest: Path) -> int:
    """Stream one stored file into the backup, re-hashing it; returns its size."""
    dest.parent.mkdir(mode=0o700, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    with store.open(sha256) as source, open(create_private(dest), "wb") as target:
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


def prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise OpsError(f"{out} is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise OpsError(f"{out} is not empty; back up into a new or empty folder")
    out.mkdir(mode=0o700, parents=True, exist_ok=True)


def empty_folder(out: Path) -> None:
    """Remove what an interrupted backup wrote (the folder was empty when it began)."""
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def write_manifest(out: Path, manifest: dict) -> None:
    tmp = out / (MANIFEST + ".part")
    with open(create_private(tmp), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, sort_keys=True, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.rename(out / MANIFEST)


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


def backup_problems(folder: Path, manifest: dict) -> list[str]:
    """Re-hash the dump and every evidence file of the backup against the manifest."""
    problems = []
    database = manifest["database"]
    dump = folder / (SQLITE_FILE if database["kind"] == "sqlite" else PG_FILE)
    if not dump.is_file():
        problems.append(f"{dump.name}: missing from the backup")
    else:
        sha, size = sha256_file(dump)
        if (sha, size) != (database["sha256"], database["size"]):
            problems.append(
                f"{dump.name}: altered (sha256 {sha}, {size} bytes; the manifest says "
                f"{database['sha256']}, {database['size']} bytes)"
            )
    for entry in manifest["evidence"]:
        path = backup_blob_path(folder, entry["sha256"])
        name = path.relative_to(folder)
        if not path.is_file():
            problems.append(f"{name}: evidence file missing from the backup")
            continue
        sha, size = sha256_file(path)
        if sha != entry["sha256"] or size != entry["size"]:
            problems.append(
                f"{name}: evidence file altered (its bytes hash to {sha}, {size} bytes)"
            )
    return problems
