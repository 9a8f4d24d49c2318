"""`auditapp evidence add | verify | purge`."""

from __future__ import annotations

import os
from datetime import date

import pytest

from auditapp.extensions import db
from auditapp.models import AuditEvent, Evidence
from auditapp.services import catalog, evidence

PDF = b"%PDF-1.4\n" + b"evidence bytes " * 100


@pytest.fixture
def synced(app):
    """The shipped catalog, synced."""
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        db.session.commit()


def _add(runner, tmp_path, data=PDF, name="記録.pdf", *extra):
    path = tmp_path / name
    path.write_bytes(data)
    return runner.invoke(args=["evidence", "add", str(path), "--link", "control:ORG-01", *extra])


def _blob_path(app, sha: str):
    from pathlib import Path

    return Path(app.config["EVIDENCE_PATH"]) / sha[:2] / sha[2:4] / sha


def test_add_prints_hash_and_records(app, runner, synced, tmp_path):
    """Adding a file prints its id and hash, stores it, and records the upload."""
    result = _add(runner, tmp_path, PDF, "記録.pdf", "--description", "確認記録")
    assert result.exit_code == 0, result.output
    assert "sha256" in result.output and "記録.pdf" in result.output
    with app.app_context():
        item = db.session.query(Evidence).one()
        assert item.description == "確認記録" and item.links[0].object_id == "ORG-01"
        assert db.session.query(AuditEvent).filter_by(action="evidence.upload").count() == 1


@pytest.mark.parametrize(
    ("data", "name", "args", "message"),
    [
        (b"", "empty.pdf", [], "empty"),
        (b"MZ\x90\x00" * 20, "a.pdf", [], "not a file type"),
        (PDF, "a.pdf", ["--valid-until", "2026-02-30"], "not a real date"),
    ],
)
def test_add_bad_input_writes_nothing(app, runner, synced, tmp_path, data, name, args, message):
    """Bad files or options exit 1 with the reason; no row and no file is kept."""
    result = _add(runner, tmp_path, data, name, *args)
    assert result.exit_code == 1 and message in result.output
    with app.app_context():
        assert db.session.query(Evidence).count() == 0
    assert list(app.extensions["evidence_store"].iter_hashes()) == []


def test_add_unknown_link(runner, synced, tmp_path):
    """A link to an unknown control or of an unknown type is refused."""
    path = tmp_path / "a.pdf"
    path.write_bytes(PDF)
    result = runner.invoke(args=["evidence", "add", str(path), "--link", "control:NOPE-99"])
    assert result.exit_code == 1 and "NOPE-99 was not found" in result.output
    result = runner.invoke(args=["evidence", "add", str(path), "--link", "invoice:1"])
    assert result.exit_code == 1 and "TYPE:ID" in result.output


def test_verify_reports_missing_altered_and_orphaned(app, runner, synced, tmp_path):
    """verify exits 0 on an intact store and 1 naming missing, altered and orphaned files."""
    _add(runner, tmp_path, PDF, "one.pdf")
    _add(runner, tmp_path, PDF + b"2", "two.pdf")
    result = runner.invoke(args=["evidence", "verify"])
    assert result.exit_code == 0 and "2 files verified" in result.output
    with app.app_context():
        one, two = (e.sha256 for e in db.session.query(Evidence).order_by(Evidence.id))
    path = _blob_path(app, one)
    os.chmod(path, 0o600)
    path.write_bytes(PDF[:-1] + b"X")
    _blob_path(app, two).unlink()
    app.extensions["evidence_store"].put_stream([b"%PDF-1.4 stray"])
    result = runner.invoke(args=["evidence", "verify"])
    assert result.exit_code == 1
    assert f"altered: evidence 1 sha256 {one}" in result.output
    assert f"missing: evidence 2 sha256 {two}" in result.output
    assert "warning: orphaned file" in result.output


def test_verify_with_only_orphans_warns_and_exits_0(app, runner, synced, tmp_path):
    """Bytes no item refers to (a crash between storing and recording) are a warning line,
    not damage: verify still exits 0."""
    _add(runner, tmp_path, PDF, "one.pdf")
    stray = app.extensions["evidence_store"].put_stream([b"%PDF-1.4 stray"])
    result = runner.invoke(args=["evidence", "verify"])
    assert result.exit_code == 0, result.output
    assert f"warning: orphaned file {stray.sha256}" in result.output
    assert "1 files verified; 1 orphaned file(s)" in result.output


def test_purge_after_retention(app, runner, synced, tmp_path):
    """Withdrawn items past retention are purged (bytes deleted, recorded); others stay."""
    _add(runner, tmp_path, PDF, "old.pdf")
    _add(runner, tmp_path, PDF + b"keep", "keep.pdf")
    with app.app_context():
        old = db.session.query(Evidence).filter_by(filename="old.pdf").one()
        evidence.withdraw(db.session, "test", old, "誤登録")
        retention = old.retention_until
        sha = old.sha256
        db.session.commit()
    result = runner.invoke(args=["evidence", "purge", "--today", retention.isoformat()])
    assert "0 item(s)" in result.output  # not yet past retention
    later = date(retention.year, retention.month, retention.day).replace(day=1)
    later = later.replace(year=later.year + 1)
    result = runner.invoke(args=["evidence", "purge", "--today", later.isoformat()])
    assert result.exit_code == 0 and "1 item(s) past retention, 1 file(s) deleted" in result.output
    assert not _blob_path(app, sha).exists()
    with app.app_context():
        assert db.session.query(Evidence).filter_by(filename="old.pdf").one().status == "purged"
        assert db.session.query(AuditEvent).filter_by(action="evidence.purge").count() == 1
    assert runner.invoke(args=["evidence", "verify"]).exit_code == 0
    bad = runner.invoke(args=["evidence", "purge", "--today", "2026-13-01"])
    assert bad.exit_code == 2 and "not a real date" in bad.output
