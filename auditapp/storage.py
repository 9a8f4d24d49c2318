"""Content-addressed evidence bytes: the EvidenceStore interface and its local backend.

This module knows bytes, not tables: callers get SHA-256 names, never paths, so an
object-store backend can be added later without touching the services.
"""

from __future__ import annotations

import abc
import contextlib
import errno
import hashlib
import io
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK_SIZE = 1024 * 1024
_HASH_RE = re.compile(r"[0-9a-f]{64}")
_SHARD_RE = re.compile(r"[0-9a-f]{2}")
_TEMP_SUFFIX = ".part"
# link(2) is missing on some shared volumes (SMB, some FUSE mounts); commit then renames.
_NO_HARDLINK_ERRNOS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


class TooLarge(ValueError):
    """More bytes were written than the limit given to `begin`."""

    def __init__(self, limit: int):
        super().__init__(f"the file exceeds the limit of {limit} bytes")
        self.limit = limit


class EmptyBlob(ValueError):
    """A blob of zero bytes was committed; empty evidence proves nothing."""


class BlobMissing(KeyError):
    """No blob is stored under this SHA-256."""

    def __init__(self, sha256: str):
        super().__init__(sha256)
        self.sha256 = sha256


@dataclass(frozen=True)
class StoredBlob:
    """What a commit stored; `created` is False when identical bytes were already there."""

    sha256: str
    size: int
    created: bool


def sha256_file(path: str | Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in chunks: the one file hash of the app."""
    digest = hashlib.sha256()
    size = 0
    with Path(path).open("rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check_hash(sha256: str) -> str:
    """Return `sha256` when it is 64 lowercase hex digits, else raise ValueError."""
    if not isinstance(sha256, str) or not _HASH_RE.fullmatch(sha256):
        raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
    return sha256


class PendingBlob(io.RawIOBase):
    """A blob being written: hashed as written into a temp file, append-only, size-limited.

    Usable as the file object of Werkzeug's multipart `stream_factory`. Closing it before
    `commit` discards the temp file (like `tempfile.TemporaryFile`), so an upload the view
    rejected is gone when Flask closes the request.
    """

    def __init__(self, tmp_dir: Path, max_bytes: int | None = None):
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes must be a positive number of bytes")
        fd, name = tempfile.mkstemp(dir=tmp_dir, suffix=_TEMP_SUFFIX)  # O_EXCL, mode 0o600
        self.path = Path(name)
        self.max_bytes = max_bytes
        self.state = "open"  # then "committed" or "discarded"
        self._file = open(fd, "w+b")  # noqa: SIM115 - lives as long as this object
        self._hash = hashlib.sha256()
        self._size = 0

    @property
    def size(self) -> int:
        """Bytes written so far."""
        return self._size

    @property
    def sha256(self) -> str:
        """SHA-256 hex digest of the bytes written so far."""
        return self._hash.hexdigest()

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return self.state == "open"

    def seekable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:
        """Append `b`; raise TooLarge (and discard everything) past the limit."""
        if self.state != "open" or self.closed:
            raise ValueError(f"write to a {self.state} blob")
        # The digest is computed as bytes arrive, so writing anywhere but the end would
        # make it lie about the contents.
        if self._file.tell() != self._size:
            raise io.UnsupportedOperation("a pending blob is append-only; seek to its end")
        data = memoryview(b).cast("B")
        if self.max_bytes is not None and self._size + len(data) > self.max_bytes:
            self.close()
            raise TooLarge(self.max_bytes)
        self._file.write(data)
        self._hash.update(data)
        self._size += len(data)
        return len(data)

    def read(self, size: int = -1) -> bytes:
        return self._file.read(size)

    def readinto(self, b: bytearray | memoryview) -> int:
        return self._file.readinto(b)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def flush(self) -> None:
        super().flush()
        if not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        """Close; an uncommitted blob's temp file is removed."""
        if self.closed or not hasattr(self, "_file"):  # the latter: __init__ refused max_bytes
            return
        try:
            super().close()
        finally:
            self._file.close()
            if self.state == "open":
                self.state = "discarded"
                self.path.unlink(missing_ok=True)

    def _finish(self) -> None:
        """Make the written bytes durable and read-only; for the store's commit only."""
        self.flush()
        fd = self._file.fileno()
        os.fchmod(fd, 0o400)
        os.fsync(fd)


class EvidenceStore(abc.ABC):
    """Where evidence bytes live, named by their SHA-256; never overwritten."""

    @abc.abstractmethod
    def begin(self, max_bytes: int | None = None) -> PendingBlob:
        """Start a blob; write to it, then `commit` or `abort` it."""

    @abc.abstractmethod
    def commit(self, pending: PendingBlob) -> StoredBlob:
        """Store the pending bytes under their hash (once) and close `pending`."""

    @abc.abstractmethod
    def abort(self, pending: PendingBlob) -> None:
        """Drop the pending bytes; safe to call twice or after commit."""

    @abc.abstractmethod
    def open(self, sha256: str) -> BinaryIO:
        """Open a stored blob for reading; BlobMissing when absent."""

    @abc.abstractmethod
    def exists(self, sha256: str) -> bool:
        """Whether a blob is stored under this hash."""

    @abc.abstractmethod
    def size(self, sha256: str) -> int:
        """Size in bytes of a stored blob; BlobMissing when absent."""

    @abc.abstractmethod
    def delete(self, sha256: str) -> bool:
        """Remove a blob (retention purge only); True when something was removed."""

    @abc.abstractmethod
    def iter_hashes(self) -> Iterator[str]:
        """Every stored blob's hash, in sorted order."""

    @abc.abstractmethod
    def cleanup_temp(self, older_than_seconds: float) -> int:
        """Remove temp files of abandoned uploads idle that long; return how many."""

    @abc.abstractmethod
    def remove_orphans(self, referenced: set[str], older_than_seconds: float) -> list[str]:
        """Remove blobs not in `referenced` stored (or last re-committed) at least that long
        ago; return their hashes, sorted. The caller says which hashes are referenced."""

    def put_stream(
        self, chunks: Iterable[bytes] | BinaryIO, max_bytes: int | None = None
    ) -> StoredBlob:
        """Store an iterable of byte chunks or a binary file object, streaming."""
        pending = self.begin(max_bytes)
        try:
            if hasattr(chunks, "read"):
                while chunk := chunks.read(CHUNK_SIZE):
                    pending.write(chunk)
            else:
                for chunk in chunks:
                    pending.write(chunk)
            return self.commit(pending)
        except BaseException:
            self.abort(pending)
            raise

    def verify(self, sha256: str) -> str:
        """Re-hash the stored bytes: "ok", "missing" or "altered"."""
        try:
            f = self.open(sha256)
        except BlobMissing:
            return "missing"
        digest = hashlib.sha256()
        with f:
            while chunk := f.read(CHUNK_SIZE):
                digest.update(chunk)
        return "ok" if digest.hexdigest() == sha256 else "altered"

    def iter_range(
        self, sha256: str, start: int, end: int, chunk: int = CHUNK_SIZE
    ) -> Iterator[bytes]:
        """Stream bytes [start, end] inclusive, e.g. for an HTTP range response.

        The blob's presence and the range are checked now, not on the first chunk, so a
        view can answer 404/416 before it starts a response.
        """
        size = self.size(sha256)
        if not 0 <= start <= end < size:
            raise ValueError(f"range {start}-{end} is outside 0-{size - 1}")
        if chunk < 1:
            raise ValueError("chunk must be positive")
        return self._iter_range(sha256, start, end - start + 1, chunk)

    def _iter_range(self, sha256: str, start: int, remaining: int, chunk: int) -> Iterator[bytes]:
        with self.open(sha256) as f:
            f.seek(start)
            while remaining > 0:
                data = f.read(min(chunk, remaining))
                if not data:
                    break
                remaining -= len(data)
                yield data


class LocalEvidenceStore(EvidenceStore):
    """Blobs as read-only files at <root>/ab/cd/<sha256>; uploads staged in <root>/tmp."""

    def __init__(self, root: str | Path):
        self._root = Path(root)
        self._tmp = self._root / "tmp"
        self._root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._tmp.mkdir(mode=0o700, exist_ok=True)

    def _path(self, sha256: str) -> Path:
        check_hash(sha256)
        return self._root / sha256[:2] / sha256[2:4] / sha256

    def begin(self, max_bytes: int | None = None) -> PendingBlob:
        return PendingBlob(self._tmp, max_bytes)

    def commit(self, pending: PendingBlob) -> StoredBlob:
        if pending.path.parent != self._tmp:
            raise ValueError("the pending blob belongs to another store")
        if pending.state != "open" or pending.closed:
            raise ValueError(f"cannot commit a {pending.state} blob")
        if pending.size == 0:
            pending.close()
            raise EmptyBlob("the file is empty")
        sha256, size = pending.sha256, pending.size
        pending._finish()
        final = self._path(sha256)
        _make_dirs(final.parent)
        try:
            # link(2) never replaces an existing name, so concurrent commits of the same
            # bytes leave one file and exactly one of them reports created=True.
            os.link(pending.path, final)
            created = True
        except FileExistsError:
            created = False
            # Bytes already there may be an orphan about to be cleaned up as old: make them
            # young again, since a row will refer to them a moment from now.
            _touch(final)
        except OSError as exc:
            if exc.errno not in _NO_HARDLINK_ERRNOS:
                raise
            # Without hard links: same name means same bytes, so a racing replace
            # rewrites identical content and never alters stored evidence.
            created = not final.exists()
            if created:
                os.replace(pending.path, final)
            else:
                _touch(final)
        if created:
            _fsync_dir(final.parent)
        pending.state = "committed"
        pending.close()
        pending.path.unlink(missing_ok=True)
        return StoredBlob(sha256=sha256, size=size, created=created)

    def abort(self, pending: PendingBlob) -> None:
        pending.close()

    def open(self, sha256: str) -> BinaryIO:
        try:
            return open(self._path(sha256), "rb")  # noqa: SIM115 - the caller closes it
        except FileNotFoundError:
            raise BlobMissing(sha256) from None

    def exists(self, sha256: str) -> bool:
        return self._path(sha256).is_file()

    def size(self, sha256: str) -> int:
        try:
            return self._path(sha256).stat().st_size
        except FileNotFoundError:
            raise BlobMissing(sha256) from None

    def delete(self, sha256: str) -> bool:
        path = self._path(sha256)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        # Shard directories stay: removing one could race a commit linking into it.
        _fsync_dir(path.parent)
        return True

    def iter_hashes(self) -> Iterator[str]:
        for first in _sorted_dirs(self._root):
            for second in _sorted_dirs(first):
                prefix = first.name + second.name
                for entry in sorted(os.scandir(second), key=lambda e: e.name):
                    if (
                        _HASH_RE.fullmatch(entry.name)
                        and entry.name.startswith(prefix)
                        and entry.is_file(follow_symlinks=False)
                    ):
                        yield entry.name

    def cleanup_temp(self, older_than_seconds: float) -> int:
        if older_than_seconds < 0:
            raise ValueError("older_than_seconds must not be negative")
        # An upload in progress touches its file on every write, so only idle ones go.
        cutoff = time.time() - older_than_seconds
        removed = 0
        for entry in os.scandir(self._tmp):
            try:
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue  # committed, aborted or cleaned by someone else meanwhile
        return removed

    def remove_orphans(self, referenced: set[str], older_than_seconds: float) -> list[str]:
        if older_than_seconds < 0:
            raise ValueError("older_than_seconds must not be negative")
        cutoff = time.time() - older_than_seconds
        removed = []
        for sha in list(self.iter_hashes()):
            if sha in referenced:
                continue
            path = self._path(sha)
            try:
                # Checked right before the unlink: a commit of the same bytes touches the file.
                if path.stat(follow_symlinks=False).st_mtime >= cutoff:
                    continue
                path.unlink()
            except FileNotFoundError:
                continue  # deleted by someone else meanwhile
            _fsync_dir(path.parent)
            removed.append(sha)
        return removed


def _sorted_dirs(parent: Path) -> list[Path]:
    """Shard directories (two hex digits) directly under `parent`, sorted."""
    return sorted(
        Path(e.path)
        for e in os.scandir(parent)
        if _SHARD_RE.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
    )


def _make_dirs(path: Path) -> None:
    """Create shard directories (0o700), making each new entry durable in its parent."""
    missing = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=0o700)
        except FileExistsError:
            continue  # another commit created it first
        _fsync_dir(directory.parent)


def _touch(path: Path) -> None:
    """Set a blob's modification time to now (its bytes stay as they are)."""
    # Another owner's file on a shared volume cannot be touched: it only stays as old as it was.
    with contextlib.suppress(PermissionError):
        os.utime(path)


def _fsync_dir(path: Path) -> None:
    """fsync a directory so renames and links in it survive a crash."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
