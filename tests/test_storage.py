"""The content-addressed evidence store: streaming, limits, integrity, concurrency."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import stat
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from werkzeug.formparser import parse_form_data
from werkzeug.test import EnvironBuilder

from auditapp.storage import (
    BlobMissing,
    EmptyBlob,
    LocalEvidenceStore,
    PendingBlob,
    StoredBlob,
    TooLarge,
)

MIB = 1024 * 1024
DATA = b"%PDF-1.7\n" + bytes(range(256)) * 40


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The store's root folder (created by the store)."""
    return tmp_path / "evidence"


@pytest.fixture
def store(root: Path) -> LocalEvidenceStore:
    """A local store on this test's own folder."""
    return LocalEvidenceStore(root)


def blob_files(root: Path) -> list[Path]:
    """Stored blob files on disk (temp files excluded)."""
    return [p for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp"]


def temp_files(root: Path) -> list[Path]:
    """Files in the store's temp folder (pending or abandoned uploads)."""
    return list((root / "tmp").iterdir())


def test_put_and_open_round_trip(store):
    """Bytes put into the store read back identically by their hash."""
    blob = store.put_stream([DATA[:100], DATA[100:]])
    with store.open(blob.sha256) as f:
        assert f.read() == DATA
    assert store.exists(blob.sha256)
    assert store.size(blob.sha256) == len(DATA) == blob.size


def test_put_stream_accepts_file_object(store):
    """A binary file object is copied in chunks like an iterable of bytes."""
    blob = store.put_stream(io.BytesIO(DATA))
    assert blob == StoredBlob(hashlib.sha256(DATA).hexdigest(), len(DATA), True)


def test_hash_is_sha256_of_bytes_and_names_the_file(store, root):
    """The blob's name is hashlib.sha256 of its bytes, sharded as ab/cd/<hash>."""
    blob = store.put_stream([DATA])
    digest = hashlib.sha256(DATA).hexdigest()
    assert blob.sha256 == digest
    assert blob_files(root) == [root / digest[:2] / digest[2:4] / digest]


def test_identical_bytes_stored_once(store, root):
    """Storing the same bytes again reports created=False and keeps one file."""
    first = store.put_stream([DATA])
    second = store.put_stream([DATA[:7], DATA[7:]])
    assert first.created is True
    assert second.created is False
    assert second.sha256 == first.sha256
    assert len(blob_files(root)) == 1
    assert temp_files(root) == []


def test_streaming_large_blob_keeps_memory_small(store):
    """A 64 MiB blob is written and verified with a small, bounded memory peak."""
    expected = hashlib.sha256()

    def chunks():
        for _ in range(64):
            chunk = os.urandom(MIB)
            expected.update(chunk)
            yield chunk

    tracemalloc.start()
    try:
        blob = store.put_stream(chunks())
        assert store.verify(blob.sha256) == "ok"
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blob.size == 64 * MIB
    assert blob.sha256 == expected.hexdigest()
    assert peak < 8 * MIB


def test_max_bytes_exceeded_raises_too_large_and_leaves_nothing(store, root):
    """Writing past max_bytes raises TooLarge with the limit and removes the temp file."""
    with pytest.raises(TooLarge) as excinfo:
        store.put_stream([b"x" * 600, b"x" * 600], max_bytes=1000)
    assert excinfo.value.limit == 1000
    assert isinstance(excinfo.value, ValueError)
    assert temp_files(root) == []
    assert blob_files(root) == []


def test_too_large_on_pending_blob_discards_it(store, root):
    """A pending blob that hits its limit is discarded and cannot be committed."""
    pending = store.begin(max_bytes=10)
    pending.write(b"0123456789")
    with pytest.raises(TooLarge):
        pending.write(b"!")
    assert pending.closed
    assert temp_files(root) == []
    with pytest.raises(ValueError, match="discarded"):
        store.commit(pending)
    store.abort(pending)


def test_empty_blob_refused(store, root):
    """Committing zero bytes raises EmptyBlob and stores nothing."""
    with pytest.raises(EmptyBlob):
        store.put_stream([])
    pending = store.begin()
    with pytest.raises(EmptyBlob):
        store.commit(pending)
    assert temp_files(root) == []
    assert blob_files(root) == []


def test_abort_leaves_nothing(store, root):
    """Abort removes the temp file, stores nothing and may be repeated."""
    pending = store.begin()
    pending.write(DATA)
    assert len(temp_files(root)) == 1
    store.abort(pending)
    store.abort(pending)
    assert temp_files(root) == []
    assert blob_files(root) == []


def test_max_bytes_must_be_positive(store, root):
    """A limit below one byte is refused before any temp file is made."""
    with pytest.raises(ValueError, match="max_bytes"):
        store.begin(max_bytes=0)
    assert temp_files(root) == []


def test_abort_after_commit_keeps_the_blob(store):
    """Abort after commit is harmless: the stored blob stays."""
    pending = store.begin()
    pending.write(DATA)
    blob = store.commit(pending)
    store.abort(pending)
    assert store.verify(blob.sha256) == "ok"
    with pytest.raises(ValueError, match="committed"):
        store.commit(pending)


def test_close_before_commit_discards_temp_file(store, root):
    """Closing an uncommitted blob (as Flask does with request files) removes its temp file."""
    pending = store.begin()
    pending.write(DATA)
    pending.close()
    assert temp_files(root) == []


def test_pending_blob_is_a_readable_append_only_file(store):
    """A pending blob reads back what was written, tracks size and hash, and only appends."""
    pending = store.begin()
    assert isinstance(pending, PendingBlob)
    assert pending.readable() and pending.writable() and pending.seekable()
    pending.write(DATA[:10])
    pending.write(bytearray(DATA[10:]))
    assert pending.size == len(DATA)
    assert pending.sha256 == hashlib.sha256(DATA).hexdigest()
    assert pending.tell() == len(DATA)
    assert pending.seek(0) == 0
    assert pending.read(9) == b"%PDF-1.7\n"
    with pytest.raises(io.UnsupportedOperation):
        pending.write(b"overwrite")
    pending.seek(0, io.SEEK_END)
    pending.write(b"!")
    pending.seek(0)
    assert pending.read() == DATA + b"!"
    assert store.commit(pending).sha256 == hashlib.sha256(DATA + b"!").hexdigest()


@pytest.mark.parametrize(
    "bad",
    ["../etc/passwd", "A" * 64, "a" * 63, "a" * 65, "g" * 64, "", "a" * 63 + "\n", None],
)
def test_bad_hash_strings_raise_value_error(store, bad):
    """Anything but 64 lowercase hex digits is refused before touching the filesystem."""
    for call in (store.open, store.exists, store.size, store.delete, store.verify):
        with pytest.raises(ValueError):
            call(bad)
    with pytest.raises(ValueError):
        store.iter_range(bad, 0, 0)


def test_missing_blob_raises_blob_missing(store):
    """Open and size of an absent hash raise BlobMissing (a KeyError)."""
    absent = "0" * 64
    with pytest.raises(BlobMissing):
        store.open(absent)
    with pytest.raises(KeyError):
        store.size(absent)
    assert store.exists(absent) is False
    assert store.delete(absent) is False


def test_verify_reports_ok_missing_and_altered(store, root):
    """Verify re-hashes the stored bytes and tells ok, missing and altered apart."""
    blob = store.put_stream([DATA])
    assert store.verify(blob.sha256) == "ok"
    assert store.verify(hashlib.sha256(b"never stored").hexdigest()) == "missing"
    (path,) = blob_files(root)
    path.chmod(0o600)
    with open(path, "r+b") as f:
        f.seek(5)
        f.write(b"X")
    assert store.verify(blob.sha256) == "altered"


def test_cleanup_temp_removes_only_old_temp_files(store, root):
    """Only temp files idle longer than the cut-off are removed; blobs are untouched."""
    blob = store.put_stream([DATA])
    old = store.begin()
    old.write(b"abandoned")
    fresh = store.begin()
    fresh.write(b"in progress")
    an_hour_ago = time.time() - 3600
    os.utime(old.path, (an_hour_ago, an_hour_ago))
    assert store.cleanup_temp(older_than_seconds=600) == 1
    assert temp_files(root) == [fresh.path]
    assert store.verify(blob.sha256) == "ok"
    assert store.cleanup_temp(older_than_seconds=600) == 0
    store.abort(old)
    store.abort(fresh)


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_remove_orphans_spares_referenced_and_young_blobs(store, root):
    """Only blobs no one refers to and older than the bound go; the rest stay intact."""
    kept = store.put_stream([DATA])
    orphan = store.put_stream([DATA + b"orphan"])
    young = store.put_stream([DATA + b"young"])
    for blob in (kept, orphan):
        _age(root / blob.sha256[:2] / blob.sha256[2:4] / blob.sha256, 2 * 86400)
    assert store.remove_orphans({kept.sha256}, older_than_seconds=86400) == [orphan.sha256]
    assert not store.exists(orphan.sha256)
    assert store.verify(kept.sha256) == "ok" and store.verify(young.sha256) == "ok"
    assert store.remove_orphans({kept.sha256}, older_than_seconds=86400) == []
    with pytest.raises(ValueError):
        store.remove_orphans(set(), older_than_seconds=-1)


def test_committing_bytes_already_there_makes_them_young(store, root):
    """Re-committing stored bytes refreshes their age, so an old orphan about to be named
    by a new row is not cleaned up under it."""
    first = store.put_stream([DATA])
    path = root / first.sha256[:2] / first.sha256[2:4] / first.sha256
    _age(path, 2 * 86400)
    again = store.put_stream([DATA])
    assert again.created is False
    assert time.time() - path.stat().st_mtime < 60
    assert store.remove_orphans(set(), older_than_seconds=86400) == []
    assert store.verify(first.sha256) == "ok"


def test_iter_range_returns_exact_slices(store):
    """Inclusive byte ranges at the start, middle and last byte come back exactly."""
    blob = store.put_stream([DATA])
    last = len(DATA) - 1
    for start, end in [(0, 0), (0, 99), (1000, 5000), (last, last), (0, last)]:
        got = b"".join(store.iter_range(blob.sha256, start, end, chunk=777))
        assert got == DATA[start : end + 1]
    assert list(store.iter_range(blob.sha256, 0, 9, chunk=4)) == [b"%PDF", b"-1.7", b"\n\x00"]


def test_iter_range_checks_range_and_presence_up_front(store):
    """A bad range raises ValueError and a missing blob BlobMissing before any iteration."""
    blob = store.put_stream([DATA])
    for start, end in [(-1, 3), (5, 4), (0, len(DATA))]:
        with pytest.raises(ValueError):
            store.iter_range(blob.sha256, start, end)
    with pytest.raises(BlobMissing):
        store.iter_range("0" * 64, 0, 0)


def test_concurrent_commits_of_identical_bytes(store, root):
    """Eight threads committing the same bytes at once all succeed and leave one file."""
    barrier = threading.Barrier(8)

    def upload(_: int) -> StoredBlob:
        pending = store.begin()
        pending.write(DATA)
        barrier.wait()
        return store.commit(pending)

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(upload, range(8)))
    assert {r.sha256 for r in results} == {hashlib.sha256(DATA).hexdigest()}
    assert sum(r.created for r in results) == 1
    assert len(blob_files(root)) == 1
    assert temp_files(root) == []
    assert store.verify(results[0].sha256) == "ok"


def test_commit_without_hard_links_renames(store, root, monkeypatch):
    """On a volume without link(2) commit falls back to rename and still deduplicates."""

    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    first = store.put_stream([DATA])
    second = store.put_stream([DATA])
    assert (first.created, second.created) == (True, False)
    assert len(blob_files(root)) == 1
    assert temp_files(root) == []
    assert store.verify(first.sha256) == "ok"


def test_stored_files_are_read_only_and_directories_private(store, root):
    """Blobs are 0o400 (evidence is immutable); store directories are 0o700."""
    blob = store.put_stream([DATA])
    (path,) = blob_files(root)
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    for directory in (root, root / "tmp", path.parent, path.parent.parent):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert store.verify(blob.sha256) == "ok"


def test_iter_hashes_and_delete(store, root):
    """iter_hashes lists every stored blob (not temp files); delete removes one."""
    blobs = sorted(store.put_stream([bytes([i]) * 10]).sha256 for i in range(5))
    pending = store.begin()
    pending.write(b"not yet stored")
    (root / "ab").mkdir()
    (root / "ab" / "stray.txt").write_text("not a blob")
    assert list(store.iter_hashes()) == blobs
    assert store.delete(blobs[0]) is True
    assert store.delete(blobs[0]) is False
    assert list(store.iter_hashes()) == blobs[1:]
    store.abort(pending)


def test_werkzeug_multipart_streams_into_pending_blob(store, root):
    """Werkzeug's multipart parser writes an upload into a pending blob that commits."""

    def stream_factory(total_content_length, content_type, filename, content_length=None):
        return store.begin(max_bytes=MIB)

    environ = EnvironBuilder(
        method="POST", data={"file": (io.BytesIO(DATA), "report.pdf")}
    ).get_environ()
    _, _, files = parse_form_data(environ, stream_factory=stream_factory)
    upload = files["file"]
    assert upload.stream.read(4) == b"%PDF"
    upload.stream.seek(0)
    blob = store.commit(upload.stream)
    assert blob.sha256 == hashlib.sha256(DATA).hexdigest()
    upload.close()
    assert temp_files(root) == []
    assert store.verify(blob.sha256) == "ok"


def test_werkzeug_swallows_too_large_into_no_file(store, root):
    """Werkzeug's parser silences TooLarge (a ValueError): the upload is absent, no temp left."""

    def stream_factory(total_content_length, content_type, filename, content_length=None):
        return store.begin(max_bytes=100)

    environ = EnvironBuilder(
        method="POST", data={"file": (io.BytesIO(DATA), "report.pdf")}
    ).get_environ()
    _, _, files = parse_form_data(environ, stream_factory=stream_factory)
    assert "file" not in files
    assert temp_files(root) == []
