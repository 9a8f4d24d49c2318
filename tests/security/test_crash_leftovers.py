"""Uploads cut short by a crash (issue 11 item 11): they leave temp files and bytes no
row refers to; `evidence verify` reports those as a warning (exit 0), damage still exits
1, and the daily clean-up job removes leftovers a day old, recorded in the audit trail."""

from __future__ import annotations

import io
import os
import time
from pathlib import Path

import pytest

from auditapp import scheduler
from auditapp.extensions import db
from auditapp.models import AuditEvent, Evidence
from auditapp.services import catalog, evidence
from tests.conftest import csrf_token, login
from tests.factories import make_evidence

PDF = b"%PDF-1.4\ncrash\n"
DAY = 86400


@pytest.fixture
def synced(app):
    """The shipped catalog, synced."""
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        db.session.commit()


def _blob(app, sha: str) -> Path:
    return Path(app.config["EVIDENCE_PATH"]) / sha[:2] / sha[2:4] / sha


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _crash_during_upload(app, users, monkeypatch) -> str:
    """A web upload whose process dies after the bytes are stored, before the row is
    written (simulated by failing the row); returns the stored bytes' hash."""

    def die(*args, **kwargs):
        raise SystemExit("killed")

    monkeypatch.setattr(evidence, "record_upload", die)
    client = app.test_client()
    login(client, users["admin"])
    with pytest.raises(SystemExit):
        client.post(
            "/evidence/upload",
            data={
                "csrf_token": csrf_token(client, "/"),
                "link": "control:ORG-01",
                "file": (io.BytesIO(PDF), "a.pdf"),
            },
            content_type="multipart/form-data",
        )
    monkeypatch.undo()
    (sha,) = app.extensions["evidence_store"].iter_hashes()
    return sha


def _run_cleanup(app) -> str:
    (job,) = [j for j in scheduler.JOBS if j.id == "cleanup_uploads"]
    with app.app_context():
        return job.run(app, None)


def test_orphan_after_a_crash_is_a_warning_not_a_failure(app, runner, synced, users, monkeypatch):
    """After the crash the file belongs to no row: verify names it and exits 0."""
    sha = _crash_during_upload(app, users, monkeypatch)
    with app.app_context():
        assert db.session.query(Evidence).count() == 0
        report = evidence.verify(db.session, app.extensions["evidence_store"])
    assert report.ok and report.orphaned == [sha]
    result = runner.invoke(args=["evidence", "verify"])
    assert result.exit_code == 0, result.output
    assert f"warning: orphaned file {sha}" in result.output


def test_damage_still_fails_next_to_orphans(app, runner, synced):
    """A missing file of a live item exits 1 even when orphans are reported too."""
    with app.app_context():
        item = make_evidence(app, db.session)
        db.session.commit()
        sha = item.sha256
    app.extensions["evidence_store"].put_stream([b"%PDF-1.4 stray"])
    _blob(app, sha).unlink()
    result = runner.invoke(args=["evidence", "verify"])
    assert result.exit_code == 1 and f"missing: evidence 1 sha256 {sha}" in result.output


def test_cleanup_job_removes_leftovers_a_day_old(app, synced, users, monkeypatch):
    """The job removes the crashed upload's bytes and an abandoned temp file once a day
    old, keeps evidence that rows refer to and anything younger, and records what it
    removed; verify then reports nothing."""
    store = app.extensions["evidence_store"]
    crashed = _crash_during_upload(app, users, monkeypatch)
    with app.app_context():
        live = make_evidence(app, db.session).sha256
        db.session.commit()
    abandoned = store.begin()
    abandoned.write(b"half an upload")
    young_orphan = store.put_stream([b"%PDF-1.4 stored a moment ago"]).sha256
    assert "0 abandoned upload files and 0 orphaned" in _run_cleanup(app)
    for path in (_blob(app, crashed), _blob(app, live), abandoned.path):
        _age(path, 2 * DAY)
    message = _run_cleanup(app)
    assert "1 abandoned upload files and 1 orphaned evidence files removed" in message
    assert not _blob(app, crashed).exists() and not abandoned.path.exists()
    assert store.verify(live) == "ok" and store.exists(young_orphan)
    with app.app_context():
        (event,) = db.session.query(AuditEvent).filter_by(action="evidence.orphans_removed")
        assert crashed in event.after_json and event.actor_label == "scheduler"
        report = evidence.verify(db.session, store)
    assert report.ok and report.orphaned == [young_orphan]
    store.abort(abandoned)


def test_interrupted_purge_is_finished_by_the_cleanup(app, synced):
    """A purge that recorded its rows but died before deleting the bytes leaves them as
    orphans, and the clean-up removes them once old."""
    store = app.extensions["evidence_store"]
    with app.app_context():
        item = make_evidence(app, db.session)
        evidence.withdraw(db.session, "test", item, "誤登録")
        evidence.mark_purged(db.session, "test", item.retention_until.replace(year=2100))
        db.session.commit()
        sha = item.sha256
    assert store.exists(sha)
    _age(_blob(app, sha), 2 * DAY)
    _run_cleanup(app)
    assert not store.exists(sha)
