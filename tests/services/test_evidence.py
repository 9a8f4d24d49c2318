"""The evidence service: the one upload flow, the retention purge, and link types that
do not depend on what was imported."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
from datetime import date
from pathlib import Path

import pytest

from auditapp.errors import InvalidInput
from auditapp.models import AuditEvent, Evidence
from auditapp.services import catalog, evidence, filetypes
from tests.factories import make_evidence

TODAY = date(2026, 11, 27)
PDF = b"%PDF-1.4\nstore_upload\n"


@pytest.fixture
def synced(app, session):
    """The shipped catalog, synced."""
    catalog.sync(session, "test", app.config["CATALOG_PATH"])
    session.commit()


def _plan(session, link="control:ORG-01"):
    return evidence.plan_upload(
        session,
        "cli:test",
        links=[link],
        description="記録",
        valid_until=None,
        supersedes_id=None,
        today=TODAY,
    )


def _store_upload(app, session, plan, data=PDF, name="記録.pdf"):
    return evidence.store_upload(
        session,
        app.extensions["evidence_store"],
        "cli:test",
        plan,
        io.BytesIO(data),
        name,
        today=TODAY,
        retention_years=5,
    )


def test_store_upload_stores_bytes_and_rows(app, session, synced):
    """Any binary stream is stored under its hash, with its row, link and audit entry."""
    item = _store_upload(app, session, _plan(session))
    session.commit()
    assert item.filename == "記録.pdf" and item.media_type == "application/pdf"
    assert [lk.object_id for lk in item.links] == ["ORG-01"]
    assert item.retention_until == date(2031, 11, 27)
    with app.extensions["evidence_store"].open(item.sha256) as f:
        assert f.read() == PDF
    assert session.query(AuditEvent).filter_by(action="evidence.upload").count() == 1


def test_no_database_transaction_during_file_work(app, session, synced, monkeypatch):
    """The type check and the store's commit run with no transaction open (a slow disk
    must not hold the database's write lock)."""
    seen = []
    real_check = filetypes.check
    store = app.extensions["evidence_store"]
    real_commit = store.commit

    def check(stream, name):
        seen.append(("check", session().in_transaction()))
        return real_check(stream, name)

    def commit(pending):
        seen.append(("commit", session().in_transaction()))
        return real_commit(pending)

    monkeypatch.setattr(filetypes, "check", check)
    monkeypatch.setattr(store, "commit", commit)
    plan = _plan(session)
    assert session().in_transaction()
    _store_upload(app, session, plan)
    assert seen == [("check", False), ("commit", False)]


def test_refused_bytes_leave_nothing(app, session, synced):
    """A file refused by its content leaves no row, no stored bytes and no temp file."""
    store = app.extensions["evidence_store"]
    for data, name in ((b"MZ\x90\x00" * 10, "a.pdf"), (b"", "empty.pdf")):
        with pytest.raises(InvalidInput):
            _store_upload(app, session, _plan(session), data, name)
        session.rollback()
    assert session.query(Evidence).count() == 0
    assert list(store.iter_hashes()) == []
    assert list((Path(app.config["EVIDENCE_PATH"]) / "tmp").iterdir()) == []


def test_purge_expired_commits_then_deletes(app, session, synced):
    """Withdrawn items past retention are purged and committed before their bytes go;
    bytes another live item shares are kept."""
    store = app.extensions["evidence_store"]
    old = make_evidence(app, session, data=PDF)
    shared = make_evidence(app, session, data=PDF + b"shared")
    twin = make_evidence(app, session, data=PDF + b"shared")
    for item in (old, shared):
        evidence.withdraw(session, "test", item, "誤登録")
    session.commit()
    ids, shas = (old.id, shared.id, twin.id), (old.sha256, twin.sha256)
    later = date(2100, 1, 1)
    result = evidence.purge_expired(session, store, "scheduler", later)
    assert not session().in_transaction()  # committed, and the deletion read ended
    assert sorted(i for i, _sha in result.purged) == sorted(ids[:2])
    assert result.deleted == 1
    assert not store.exists(shas[0]) and store.exists(shas[1])
    session.expire_all()
    assert {e.id: e.status for e in session.query(Evidence)} == dict(
        zip(ids, ("purged", "purged", "active"), strict=True)
    )
    assert session.query(AuditEvent).filter_by(action="evidence.purge").count() == 2
    assert evidence.purge_expired(session, store, "scheduler", later).purged == []


@pytest.mark.parametrize("module", ["auditapp.scheduler", "auditapp.cli", "auditapp.web"])
def test_link_types_and_figures_do_not_depend_on_imports(module, tmp_path):
    """Importing only the scheduler, the CLI or the web gives every link type, and a
    check's live figures include the training completion rate."""
    script = textwrap.dedent(
        f"""
        import importlib
        from datetime import date
        importlib.import_module({module!r})
        from auditapp import create_app
        from auditapp.extensions import db
        from auditapp.models import Course
        from auditapp.services import catalog, checks, evidence
        app = create_app({{"TESTING": True, "SECRET_KEY": "x",
                          "INSTANCE_PATH": {str(tmp_path)!r}}})
        with app.app_context():
            db.create_all()
            catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
            db.session.add(Course(code="PI", title_ja="研修", title_en="Training",
                                  control_codes="HUM-01", effective_from=date(2026, 4, 1)))
            db.session.flush()
            figures = checks.figures_for(db.session, catalog.get(db.session, "HUM-01"),
                                         date(2026, 11, 27))
            print(evidence.link_types(), sorted(figures))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert "['check', 'completion', 'control', 'finding']" in out
    assert "PI completion %" in out
