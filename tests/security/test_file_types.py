"""ASVS 5.0 5.2.2 (the content matches the allowed type, not only the name): web pages
named .txt and Office files with macros are refused over the web, in both languages,
and nothing is stored (issue 11 item 12)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from auditapp.extensions import db
from auditapp.models import Evidence
from auditapp.services import catalog
from tests.conftest import csrf_token


def _macro_docx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
        archive.writestr("word/vbaProject.bin", b"\xd0\xcf\x11\xe0 Attribute VB_Name")
    return buffer.getvalue()


HTML_PAGE = b'<!doctype html><meta http-equiv="refresh" content="0;url=//evil.example/">'
HTML_MAIL = (
    b"From: a@example.jp\r\nTo: b@example.jp\r\nSubject: x\r\n"
    b"Content-Type: text/html\r\n\r\n<html><script>alert(1)</script></html>"
)

CASES = [
    (HTML_PAGE, "memo.txt", "web page markup (<!doctype html)", "ウェブページの記述"),
    (HTML_MAIL, "mail.txt", "web page markup (<html)", "ウェブページの記述"),
    (b"a,b\n<svg onload=alert(1)>\n", "list.csv", "web page markup (<svg)", "ZIP アーカイブ"),
    (_macro_docx(), "規程.docx", "contains macros (word/vbaProject.bin)", "マクロ"),
    (_macro_docx(), "規程.docm", "macro-enabled Office files (.docm)", "マクロ有効"),
]


@pytest.fixture
def synced(app):
    """The catalog synced (the admin attaches to ORG-01)."""
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        db.session.commit()


@pytest.mark.parametrize(("data", "name", "english", "japanese"), CASES)
def test_refused_with_the_reason_in_both_languages(
    app, as_role, synced, data, name, english, japanese
):
    """Each crafted file gets a 400 saying what was found, in English and in Japanese;
    no row, no stored file and no temp file is left."""
    client = as_role("admin")
    for language, expected in (("en", english), ("ja", japanese)):
        response = client.post(
            "/evidence/upload",
            data={
                "csrf_token": csrf_token(client, "/"),
                "link": "control:ORG-01",
                "file": (io.BytesIO(data), name),
            },
            headers={"Accept": "application/json", "Accept-Language": language},
            content_type="multipart/form-data",
        )
        assert response.status_code == 400
        assert expected in response.json["errors"]["file"]
    with app.app_context():
        assert db.session.query(Evidence).count() == 0
    assert [p for p in Path(app.config["EVIDENCE_PATH"]).rglob("*") if p.is_file()] == []
