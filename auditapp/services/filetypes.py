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
    if kind == "text" and declared.kind in {"csv", "txt"}:
        return declared
    if kind == "eml" and declared.kind in {"eml", "txt"}:
        return declared
    if kind in {"xlsx", "docx", "pptx"} and declared.kind == "zip":
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
