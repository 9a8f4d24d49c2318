"""What a file is, judged by its bytes, and safe names for stored files.

The Content-Type a browser sends is never trusted (SECURITY.md item 12): the type
comes from the bytes (magic numbers, the parts inside Office files) and the
extension of the name must agree with it.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from dataclasses import dataclass
from typing import BinaryIO

from auditapp.i18n import lazy_text as _l
from auditapp.services.inputs import fail


@dataclass(frozen=True)
class FileType:
    """An allowed kind of evidence file."""

    kind: str
    media_type: str
    extensions: tuple[str, ...]


TYPES = [
    FileType("pdf", "application/pdf", (".pdf",)),
    FileType("png", "image/png", (".png",)),
    FileType("jpeg", "image/jpeg", (".jpg", ".jpeg")),
    FileType("gif", "image/gif", (".gif",)),
    FileType("webp", "image/webp", (".webp",)),
    FileType(
        "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", (".xlsx",)
    ),
    FileType(
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        (".docx",),
    ),
    FileType(
        "pptx",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        (".pptx",),
    ),
    FileType("csv", "text/csv", (".csv",)),
    FileType("txt", "text/plain", (".txt",)),
    FileType("eml", "message/rfc822", (".eml",)),
    FileType("zip", "application/zip", (".zip",)),
]
BY_EXTENSION = {ext: t for t in TYPES for ext in t.extensions}
ALLOWED = ", ".join(sorted(ext.lstrip(".") for ext in BY_EXTENSION))
_OFFICE_PART = {"xlsx": "xl/", "docx": "word/", "pptx": "ppt/"}
_MACRO_EXTENSIONS = {".docm", ".dotm", ".xlsm", ".xltm", ".xlam", ".pptm", ".potm", ".ppsm"}
# Macros in an Office Open XML file: a VBA project part, Excel 4.0 macro sheets, or a
# macro-enabled content type (what .docm/.xlsm/.pptm declare) even under another name.
_MACRO_PART = re.compile(r"(^|/)vbaProject\.bin$|^xl/macrosheets/", re.IGNORECASE)
_MACRO_CONTENT_TYPE = re.compile(rb"macroEnabled|vbaProject", re.IGNORECASE)
_CONTENT_TYPES_LIMIT = 1024 * 1024
# Markup a browser would render or run, anywhere in a text file: an HTML document or its
# active parts, SVG, an XML style sheet (XSLT runs script), an event handler attribute.
# Every branch starts with "<" and the tag names are grouped by first letter, so the scan
# skips ordinary text quickly (bench/text_markup.py).
_MARKUP = re.compile(
    rb"<(?:(?P<tag>!doctype\s+html|h(?:tml|ead)|b(?:ody|ase)|s(?:cript|vg|tyle)"
    rb"|i?frame(?:set)?|object|embed|applet|meta|link)[\s/>]"
    rb"|(?P<xslt>\?xml-stylesheet)"
    rb"|[a-z][a-z0-9-]*\s[^<>]{0,200}?\b(?P<handler>on[a-z]{3,20})\s*=)",
    re.IGNORECASE,
)
_XHTML = b"http://www.w3.org/1999/xhtml"  # namespace names are case-sensitive
_MARKUP_OVERLAP = 300  # a match may straddle two chunks
_EML_HEADER = re.compile(
    rb"^(Received|From|To|Subject|Date|Message-ID|MIME-Version|Return-Path|Delivered-To"
    rb"|Content-Type|X-[A-Za-z-]+):",
    re.IGNORECASE | re.MULTILINE,
)
MAX_NAME = 200
HEAD_BYTES = 8192


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for codec in ("utf-8", "cp932"):
        try:
            head.decode(codec)
            return True
        except UnicodeDecodeError as exc:
            # The head may end inside a multi-byte character: that is still text.
            if len(head) == HEAD_BYTES and exc.start >= len(head) - 3:
                return True
    return False


def _zip_kind(stream: BinaryIO) -> str | None:
    """'xlsx', 'docx', 'pptx' for Office files, 'zip' for another archive, None if broken."""
    try:
        stream.seek(0)
        with zipfile.ZipFile(stream) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    finally:
        stream.seek(0)
    if "[Content_Types].xml" in names:
        for kind, prefix in _OFFICE_PART.items():
            if any(n.startswith(prefix) for n in names):
                return kind
    return "zip"


def office_macros(stream: BinaryIO) -> str | None:
    """What in an Office file carries macros (a part's name or the content type), or None."""
    try:
        stream.seek(0)
        with zipfile.ZipFile(stream) as archive:
            for name in archive.namelist():
                if _MACRO_PART.search(name):
                    return name
            with archive.open("[Content_Types].xml") as part:
                types = part.read(_CONTENT_TYPES_LIMIT)  # bounded: a bomb stays small
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, RuntimeError):
        return None
    finally:
        stream.seek(0)
    match = _MACRO_CONTENT_TYPE.search(types)
    return f"[Content_Types].xml: {match.group(0).decode()}" if match else None


def text_markup(stream: BinaryIO) -> str | None:
    """The first markup a browser would render or run in a text file (e.g. "<script"), or
    None; the whole file is read in chunks."""
    stream.seek(0)
    tail = b""
    try:
        while chunk := stream.read(1024 * 1024):
            window = tail + chunk
            match = _MARKUP.search(window)
            if match:
                return _describe_markup(match)
            if _XHTML in window:
                return "XHTML namespace"
            tail = chunk[-_MARKUP_OVERLAP:]
    finally:
        stream.seek(0)
    return None


def _describe_markup(match: re.Match) -> str:
    if match.group("tag"):
        return "<" + " ".join(match.group("tag").decode("ascii").lower().split())
    if match.group("xslt"):
        return "<?xml-stylesheet"
    return match.group("handler").decode("ascii").lower() + "="


def sniff(stream: BinaryIO) -> str | None:
    """The kind of file by its bytes, or None when it is none of the allowed kinds."""
    stream.seek(0)
    head = stream.read(HEAD_BYTES)
    stream.seek(0)
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return _zip_kind(stream)
    if head and _is_text(head):
        return "eml" if len(_EML_HEADER.findall(head[:4096])) >= 2 else "text"
    return None


def check(stream: BinaryIO, filename: str) -> FileType:
    """The file's type when its bytes are an allowed kind and its extension agrees; else
    InvalidInput saying what is allowed."""
    ext = ("." + filename.rsplit(".", 1)[1].lower()) if "." in filename else ""
    declared = BY_EXTENSION.get(ext)
    if ext in _MACRO_EXTENSIONS:
        raise fail(
            "file",
            _l(
                "macro-enabled Office files (%(ext)s) are not accepted: save it without macros "
                "(.docx, .xlsx, .pptx) or as PDF",
                ext=ext,
            ),
        )
    if declared is None:
        raise fail(
            "file",
            _l("files of this type are not accepted (allowed: %(allowed)s)", allowed=ALLOWED),
        )
    stream.seek(0)
    if not stream.read(1):
        raise fail("file", _l("the file is empty"))
    kind = sniff(stream)
    if kind is None:
        raise fail(
            "file",
            _l("the content is not a file type we accept (allowed: %(allowed)s)", allowed=ALLOWED),
        )
    if declared.kind in {"csv", "txt"} and kind in {"text", "eml"}:
        _refuse_markup(stream)
    if kind == "text" and declared.kind in {"csv", "txt"}:
        return declared
    if kind == "eml" and declared.kind in {"eml", "txt"}:
        return declared
    if kind in {"xlsx", "docx", "pptx"}:
        _refuse_macros(stream)
        if declared.kind == "zip":
            return declared  # an Office file is a ZIP archive; kept as the archive it was named
    if kind != declared.kind:
        raise fail(
            "file",
            _l(
                "the content does not match the name: a %(ext)s name but %(kind)s content",
                ext=ext,
                kind=kind,
            ),
        )
    return declared


def _refuse_markup(stream: BinaryIO) -> None:
    found = text_markup(stream)
    if found:
        raise fail(
            "file",
            _l(
                "this text file contains web page markup (%(found)s) that a browser could "
                "run; text evidence must be plain text (put such a file in a ZIP archive "
                "to keep it as it is)",
                found=found,
            ),
        )


def _refuse_macros(stream: BinaryIO) -> None:
    found = office_macros(stream)
    if found:
        raise fail(
            "file",
            _l(
                "this Office file contains macros (%(found)s); files with macros are not "
                "accepted: save it without macros (.docx, .xlsx, .pptx) or as PDF",
                found=found,
            ),
        )


_BAD_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def safe_filename(name: str | None) -> str:
    """A display name without path parts, control, format (bidi) or reserved characters,
    at most 200 characters with its extension kept; Japanese is kept as is."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[\\/]", name)[-1]  # no path parts, from Windows or POSIX
    name = "".join(ch for ch in name if unicodedata.category(ch) not in _BAD_CATEGORIES)
    name = re.sub(r'[<>:"|?*]', "_", name)
    name = re.sub(r"\s+", " ", name).strip(" .")
    if not name:
        return "evidence"
    if len(name) > MAX_NAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: MAX_NAME - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            name = name[:MAX_NAME]
    return name
