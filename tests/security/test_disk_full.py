"""A full disk (ENOSPC, EDQUOT, the database's own "disk full") answers 507 and says so."""

from __future__ import annotations

import errno
import io
import logging
import sqlite3

import pytest
from sqlalchemy.exc import OperationalError

from auditapp.extensions import db
from auditapp.models import Evidence
from auditapp.services import catalog
from auditapp.storage import PendingBlob
from auditapp.web.errors import is_disk_full
from tests.conftest import csrf_token

PDF = b"%PDF-1.4\n" + b"x" * 4096 + b"\n%%EOF\n"


def _full(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def synced(app):
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        db.session.commit()


def _upload(client, lang: str):
    return client.post(
        "/evidence/upload",
        data={
            "csrf_token": csrf_token(client, "/"),
            "file": (io.BytesIO(PDF), "report.pdf"),
            "link": "control:ORG-01",
        },
        headers={"Accept-Language": lang},
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", "disk is full; nothing was saved"), ("ja", "ディスクの空きがない")],
)
def test_upload_on_a_full_disk_answers_507(app, as_role, synced, monkeypatch, caplog, lang, words):
    """The evidence store's write fails with ENOSPC: 507, a clear message, logged, no row."""
    client = as_role("admin")
    with client.session_transaction() as sess:
        sess["lang"] = lang
    monkeypatch.setattr(PendingBlob, "write", _full)
    with caplog.at_level(logging.ERROR):
        response = _upload(client, lang)
    assert response.status_code == 507
    assert words in response.get_data(as_text=True)
    assert any("disk full" in r.getMessage() for r in caplog.records)
    with app.app_context():
        assert db.session.query(Evidence).count() == 0


def test_json_callers_get_507_json(app, monkeypatch):
    """Under /api/ the same refusal is JSON."""
    from auditapp import access

    access.RULES["api.fill"] = access.PUBLIC
    app.add_url_rule("/api/fill", "api.fill", lambda: _full())
    try:
        response = app.test_client().get("/api/fill", headers={"Accept-Language": "en"})
    finally:
        del access.RULES["api.fill"]
    assert response.status_code == 507
    assert "disk is full" in response.json["error"]


def test_other_errors_stay_500(app):
    """An OSError that is not about space is still the generic 500 (nothing to tell)."""
    from auditapp import access

    def broken():
        raise OSError(errno.EIO, "I/O error")

    access.RULES["main.broken"] = access.PUBLIC
    app.add_url_rule("/broken", "main.broken", broken)
    try:
        response = app.test_client().get("/broken")
    finally:
        del access.RULES["main.broken"]
    assert response.status_code == 500


def test_database_disk_full_is_recognised():
    """SQLite's SQLITE_FULL and PostgreSQL's 53100, wrapped by SQLAlchemy, count as full."""
    lite = sqlite3.OperationalError("database or disk is full")
    lite.sqlite_errorcode = 13
    assert is_disk_full(OperationalError("INSERT", {}, lite))

    class DiskFull(Exception):
        sqlstate = "53100"

    assert is_disk_full(OperationalError("INSERT", {}, DiskFull()))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    wrapped = RuntimeError("while saving")
    wrapped.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    assert is_disk_full(wrapped)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("nope"))
