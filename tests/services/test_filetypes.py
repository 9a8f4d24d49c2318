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


def office_with(kind: str, parts: dict[str, str], content_types: str = "<Types/>") -> bytes:
    """An Office Open XML archive of the given kind with extra parts."""
    part = {"xlsx": "xl/workbook.xml", "docx": "word/document.xml", "pptx": "ppt/presentation.xml"}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr(part[kind], "<x/>")
        for name, data in parts.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"<!DOCTYPE html><html><body>hi</body></html>", "<!doctype html"),
        ("\ufeff  <html lang='ja'>".encode(), "<html"),
        (b"note\n<script>alert(1)</script>\n", "<script"),
        (b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "<svg"),
        (b'<?xml version="1.0"?><?xml-stylesheet href="x.xsl"?><a/>', "<?xml-stylesheet"),
        (b'<?xml version="1.0"?><x:a xmlns:x="http://www.w3.org/1999/xhtml"/>', "XHTML"),
        (b"id,name\n1,<img src=x onerror=alert(1)>\n", "onerror="),
        (b"<IFRAME SRC='//evil.example'>", "<iframe"),
        (b"x" * (3 * 1024 * 1024) + b"<script>late()</script>", "<script"),
    ],
)
def test_text_with_markup_is_refused_naming_it(data, found):
    """HTML, SVG and XML with script or style sheets are refused as .txt and .csv, with
    what was found, wherever it is in the file."""
    for name in ("page.txt", "data.csv"):
        with pytest.raises(InvalidInput) as info:
            filetypes.check(io.BytesIO(data), name)
        message = str(info.value.errors["file"])
        assert "markup" in message and found in message


@pytest.mark.parametrize(
    "text",
    [
        "if a < b and c > d then x<y\n",
        "件名: 会議 <2026年4月>\n",
        "email: <taro@example.jp>\nlink: <https://example.jp/a?b=c>\n",
        "x" * (1024 * 1024 - 4) + "<b> bold markup stays text </b>",
    ],
)
def test_plain_text_with_angle_brackets_is_accepted(text):
    """Comparisons, bracketed addresses and harmless tags are ordinary text."""
    assert filetypes.check(io.BytesIO(text.encode()), "note.txt").kind == "txt"


@pytest.mark.parametrize(
    ("data", "name", "found"),
    [
        (office_with("docx", {"word/vbaProject.bin": "VBA"}), "規程.docx", "word/vbaProject.bin"),
        (office_with("xlsx", {"xl/vbaProject.bin": "VBA"}), "台帳.xlsx", "xl/vbaProject.bin"),
        (office_with("xlsx", {"xl/macrosheets/sheet1.xml": "<x/>"}), "a.xlsx", "macrosheets"),
        (
            office_with(
                "xlsx",
                {},
                '<Types><Override PartName="/xl/workbook.xml" ContentType="application/'
                'vnd.ms-excel.sheet.macroEnabled.main+xml"/></Types>',
            ),
            "renamed.xlsx",
            "macroEnabled",
        ),
        (office_with("pptx", {"ppt/vbaProject.bin": "VBA"}), "slides.zip", "ppt/vbaProject.bin"),
    ],
)
def test_office_files_with_macros_are_refused(data, name, found):
    """A VBA project, Excel 4.0 macro sheets or a macro-enabled content type are refused,
    also in a file named .zip (its bytes are an Office document)."""
    with pytest.raises(InvalidInput) as info:
        filetypes.check(io.BytesIO(data), name)
    message = str(info.value.errors["file"])
    assert "macros" in message and found in message


@pytest.mark.parametrize("name", ["報告.docm", "台帳.xlsm", "研修.pptm", "addin.xlam"])
def test_macro_enabled_extensions_are_refused(name):
    """.docm, .xlsm, .pptm and the like are refused, saying why."""
    data = office_with("docx", {"word/vbaProject.bin": "VBA"})
    with pytest.raises(InvalidInput) as info:
        filetypes.check(io.BytesIO(data), name)
    assert "macro-enabled" in str(info.value.errors["file"])


def test_office_file_without_macros_still_passes():
    """An Office file with other parts (media, custom XML) is accepted."""
    data = office_with("docx", {"word/media/image1.png": "png", "customXml/item1.xml": "<a/>"})
    assert filetypes.check(io.BytesIO(data), "規程.docx").kind == "docx"
