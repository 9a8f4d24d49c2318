"""File types judged by content, and sanitized names (SECURITY.md items 12-13)."""

from __future__ import annotations

import io
import zipfile

import pytest

from auditapp.errors import InvalidInput
from auditapp.services import filetypes

PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64


def office(kind: str) -> bytes:
    """A minimal Office Open XML archive of the given kind."""
    part = {"xlsx": "xl/workbook.xml", "docx": "word/document.xml", "pptx": "ppt/presentation.xml"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr(part[kind], "<x/>")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "name", "kind"),
    [
        (PDF, "監査報告.pdf", "pdf"),
        (PNG, "scan.PNG", "png"),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 16, "photo.jpg", "jpeg"),
        (b"GIF89a" + b"\x00" * 16, "a.gif", "gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "a.webp", "webp"),
        (office("xlsx"), "台帳.xlsx", "xlsx"),
        (office("docx"), "規程.docx", "docx"),
        (office("pptx"), "研修.pptx", "pptx"),
        (office("docx"), "bundle.zip", "zip"),
        ("氏名,部署\n佐藤,総務\n".encode("cp932"), "list.csv", "csv"),
        ("メモ".encode(), "note.txt", "txt"),
        (b"From: a@example.jp\r\nTo: b@example.jp\r\nSubject: x\r\n\r\nbody", "m.eml", "eml"),
    ],
)
def test_allowed_types_are_recognized(data, name, kind):
    """Each allowed type is recognized from its bytes with a matching extension."""
    assert filetypes.check(io.BytesIO(data), name).kind == kind


@pytest.mark.parametrize(
    ("data", "name", "message"),
    [
        (EXE, "invoice.pdf", "not a file type we accept"),
        (PDF, "scan.png", "does not match the name"),
        (PDF, "run.exe", "not accepted"),
        (PDF, "noextension", "not accepted"),
        (b"", "empty.pdf", "empty"),
        (b"PK\x03\x04broken", "x.zip", "not a file type we accept"),
    ],
)
def test_refused_types_say_why(data, name, message):
    """Executables, mismatched names, unknown extensions and empty files are refused."""
    with pytest.raises(InvalidInput) as info:
        filetypes.check(io.BytesIO(data), name)
    assert message in str(info.value.errors["file"])
    assert "pdf" in str(info.value.errors["file"]) or "empty" in message


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\taro\\報告書.pdf", "報告書.pdf"),
        ("a\x00b.pdf", "ab.pdf"),
        ("invoice\u202efdp.exe", "invoicefdp.exe"),
        ("  .hidden. ", "hidden"),
        ("", "evidence"),
        ('what?<>"|*.pdf', "what______.pdf"),
        ("個人情報 取扱台帳 2026年度.xlsx", "個人情報 取扱台帳 2026年度.xlsx"),
    ],
)
def test_safe_filename(raw, safe):
    """Names lose path parts, control and bidi characters; Japanese stays."""
    assert filetypes.safe_filename(raw) == safe


def test_long_names_keep_their_extension():
    """A 300-character name is cut to 200 characters and keeps its extension."""
    name = filetypes.safe_filename("あ" * 300 + ".pdf")
    assert len(name) == 200 and name.endswith(".pdf")
