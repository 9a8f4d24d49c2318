"""The backup folder's files: names, private files, evidence copies, the signed manifest,
and reading a backup without following links.

A backup folder is untrusted input at restore time: whoever could write to it may have
put symbolic links, hard links or special files in it. `BackupFolder` opens every file
component by component below the folder with O_NOFOLLOW, and accepts only regular files
with a single link, so nothing is read from outside the folder.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path
from typing import Any, BinaryIO

from auditapp.errors import OpsError
from auditapp.services.audit import AuditKeys
from auditapp.storage import CHUNK_SIZE, EvidenceStore, check_hash

MANIFEST = "manifest.json"
# 2: signed (HMAC with the audit key) and holding a signed audit checkpoint; 1 (older
# versions) is read only with --trust-unsigned.
FORMAT = 2
FORMATS = (1, 2)
MAX_MANIFEST_BYTES = 256 * 1024**2  # ~2 million evidence files
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
EVIDENCE_DIR = "evidence"


def create_private(path: Path) -> int:
    """A new file readable by its owner only (backups hold personal data); fails if present."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


def backup_blob_path(folder: Path, sha256: str) -> Path:
    return folder / blob_name(sha256)


def blob_name(sha256: str) -> str:
    """Where an evidence file sits in a backup folder, relative to it."""
    return f"{EVIDENCE_DIR}/{sha256[:2]}/{sha256}"


def digest(source: BinaryIO, target: BinaryIO | None = None) -> tuple[str, int]:
    """SHA-256 and size of what `source` holds, copying it into `target` on the way."""
    hashed = hashlib.sha256()
    size = 0
    while chunk := source.read(CHUNK_SIZE):
        hashed.update(chunk)
        size += len(chunk)
        if target is not None:
            target.write(chunk)
    return hashed.hexdigest(), size


def copy_blob(store: EvidenceStore, sha256: str, dest: Path) -> int:
    """Stream one stored file into the backup, re-hashing it; returns its size."""
    dest.parent.mkdir(mode=0o700, exist_ok=True)
    with store.open(sha256) as source, open(create_private(dest), "wb") as target:
        found, size = digest(source, target)
        target.flush()
        os.fsync(target.fileno())
    if found != sha256:
        raise OpsError(
            f"evidence file {sha256} is altered in the store (its bytes hash to "
            f"{found}); run `auditapp evidence verify`"
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


def _unsigned(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k != "signature"}


def sign_manifest(manifest: dict, keys: AuditKeys) -> dict:
    """The manifest with its signature: an HMAC of everything else in it, under the
    instance's audit key (the dump's and every file's SHA-256 are in what it covers)."""
    unsigned = _unsigned(manifest)
    return unsigned | {"signature": {"key_id": keys.current_id, "hmac": keys.sign(unsigned)}}


def signature_problem(manifest: dict, keys: AuditKeys | None, key_file: Path) -> str | None:
    """Why the manifest's signature does not hold, or None when it does."""
    signature = manifest.get("signature")
    if not isinstance(signature, dict):
        return "the manifest is not signed (a backup made by an older version, or edited)"
    if keys is None:
        return (
            f"this instance has no audit key ({key_file}) to check the manifest's signature: "
            f"copy there the key of the instance that made the backup"
        )
    return keys.check(_unsigned(manifest), signature.get("key_id"), signature.get("hmac"))


class BackupFolder:
    """A backup folder read without following links (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        try:
            self._fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise OpsError(f"cannot open the backup folder {root}: {exc.strerror}") from None

    def __enter__(self) -> BackupFolder:
        return self

    def __exit__(self, *exc_info) -> None:
        os.close(self._fd)

    def open(self, name: str) -> BinaryIO:
        """Open `name` (a path relative to the folder) for reading: FileNotFoundError when
        it is not there, OpsError when any part of it is a link or it is not a regular file
        with exactly one link."""
        parts = name.split("/")
        opened: list[int] = []
        try:
            parent = self._fd
            for part in parts[:-1]:
                parent = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
                opened.append(parent)
            fd = os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                raise OpsError(
                    f"{name}: a symbolic link in the backup (never followed; refused)"
                ) from None
            raise
        finally:
            for fd_ in opened:
                os.close(fd_)
        info = os.fstat(fd)
        problem = None
        if not stat.S_ISREG(info.st_mode):
            problem = f"{name}: not a regular file (a device, pipe or socket; refused)"
        elif info.st_nlink != 1:
            problem = (
                f"{name}: has {info.st_nlink} hard links; a file linked from elsewhere is not "
                f"read (copy the backup with `cp -a`, not `cp -al`)"
            )
        if problem:
            os.close(fd)
            raise OpsError(problem)
        return os.fdopen(fd, "rb")

    def strange_entries(self) -> list[str]:
        """Every symbolic link or special file anywhere in the folder (a backup holds none)."""
        problems = []
        for where, dirs, files, dir_fd in os.fwalk(".", dir_fd=self._fd, follow_symlinks=False):
            for name in sorted(dirs + files):
                mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
                shown = os.path.normpath(os.path.join(where, name))
                if stat.S_ISLNK(mode):
                    problems.append(f"{shown}: a symbolic link in the backup (refused)")
                elif not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                    problems.append(f"{shown}: a special file in the backup (refused)")
        return problems


def read_manifest(folder: BackupFolder | Path) -> dict:
    """The manifest of a backup folder, checked for shape; OpsError naming what is wrong."""
    if not isinstance(folder, BackupFolder):
        with BackupFolder(folder) as opened:
            return read_manifest(opened)
    path = folder.root / MANIFEST
    try:
        with folder.open(MANIFEST) as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise OpsError(f"{path}: over {MAX_MANIFEST_BYTES // 1024**2} MiB, not a manifest")
        manifest = json.loads(raw.decode("utf-8"))
    except FileNotFoundError:
        raise OpsError(f"{path} is missing: {folder.root} is not a complete backup") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpsError(f"{path}: not valid JSON ({exc})") from None
    problems = _manifest_problems(manifest)
    if problems:
        raise OpsError(f"{path} is not a valid manifest", problems)
    return manifest


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _database_problems(database: Any) -> list[str]:
    if not isinstance(database, dict) or database.get("kind") not in ("sqlite", "postgresql"):
        return ["database.kind: expected 'sqlite' or 'postgresql'"]
    problems = []
    if not isinstance(database.get("sha256"), str) or not _is_count(database.get("size")):
        problems.append("database: sha256 and size are required")
    if database["kind"] == "postgresql" and not isinstance(database.get("schema"), str):
        problems.append("database.schema: required for a PostgreSQL backup")
    if not isinstance(database.get("pg_dump", ""), str):
        problems.append("database.pg_dump: expected the pg_dump version text")
    return problems


def _manifest_problems(m: Any) -> list[str]:
    if not isinstance(m, dict):
        return ["the manifest is not a JSON object"]
    if m.get("format") not in FORMATS:
        return [f"format: {m.get('format')!r} is not supported (this version reads {FORMAT})"]
    problems = _database_problems(m.get("database"))
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
    if not isinstance(m.get("migration_revision"), str | None):
        problems.append("migration_revision: expected the revision text")
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


def dump_name(manifest: dict) -> str:
    """The database dump's file name in the backup folder."""
    return SQLITE_FILE if manifest["database"]["kind"] == "sqlite" else PG_FILE


def copy_dump(folder: BackupFolder, manifest: dict, dest: Path) -> list[str]:
    """Copy the dump into a private file, hashing it on the way: the copy, not the backup
    folder (which may change meanwhile), is what gets checked and restored."""
    name, database = dump_name(manifest), manifest["database"]
    try:
        with folder.open(name) as source, open(create_private(dest), "wb") as target:
            sha, size = digest(source, target)
    except FileNotFoundError:
        return [f"{name}: missing from the backup"]
    except OpsError as exc:
        return [str(exc)]
    if (sha, size) != (database["sha256"], database["size"]):
        return [
            f"{name}: altered (sha256 {sha}, {size} bytes; the manifest says "
            f"{database['sha256']}, {database['size']} bytes)"
        ]
    return []


def backup_problems(folder: BackupFolder, manifest: dict) -> list[str]:
    """Links and special files anywhere in the folder, and every evidence file re-hashed
    against the manifest."""
    problems = folder.strange_entries()
    for entry in manifest["evidence"]:
        name = blob_name(entry["sha256"])
        try:
            with folder.open(name) as f:
                sha, size = digest(f)
        except FileNotFoundError:
            problems.append(f"{name}: evidence file missing from the backup")
            continue
        except OpsError as exc:
            problems.append(str(exc))
            continue
        if sha != entry["sha256"] or size != entry["size"]:
            problems.append(
                f"{name}: evidence file altered (its bytes hash to {sha}, {size} bytes)"
            )
    return problems
