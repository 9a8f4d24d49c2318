"""`export verify`: re-check an evidence bundle offline, safely whatever the ZIP holds.

Every file is hashed against manifest.csv (and SHA256SUMS), nothing unlisted may be in
the bundle, and the workbook's Evidence sheet must agree with the manifest. A bundle
comes from outside (an auditor's copy, a mail attachment), so it is read as hostile
input (issue 11 item 9):

- the ZIP's own directory is sized before it is parsed (member count, directory bytes);
- each member's declared size and compression ratio are bounded before a byte of it is
  read, so a small ZIP cannot inflate to gigabytes (a "ZIP bomb"); zipfile stops at the
  declared size and checks the CRC;
- unsafe names are refused: `..`, absolute paths, backslashes, drive letters, NUL and
  control characters, duplicates (also differing only in case), symbolic links;
- members are hashed by streaming; nothing is extracted to disk; the workbook is read
  inside the ZIP, its XML parts streamed (no entities, no DTD) and only the Evidence
  sheet's cells kept;
- every problem is one line; an unreadable ZIP is one line too, never a traceback.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from lxml import etree

from auditapp.services.export.bundle import MANIFEST_NAME, README_NAME, SUMS_NAME, WORKBOOK_NAME
from auditapp.services.export.sheets.evidence import TITLE as EVIDENCE_SHEET
from auditapp.storage import CHUNK_SIZE

MiB = 1024 * 1024
GiB = 1024 * MiB
# What can go wrong reading a member: zipfile, zlib, truncated or unsupported data.
_READ_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    ValueError,
)
_UNSAFE_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_CELL_REF = re.compile(r"([A-Z]{1,3})[0-9]*")
# Evidence sheet columns read: id, file name, size, SHA-256, file check, path in the bundle.
_EVIDENCE_COLUMNS = {0: "id", 2: "filename", 5: "size", 6: "sha256", 10: "check", 11: "path"}


@dataclass(frozen=True)
class Limits:
    """Bounds for reading a bundle (generous for real bundles, small for bombs)."""

    members: int = 200_000  # entries in the ZIP
    directory_bytes: int = 64 * MiB  # the ZIP's central directory
    member_bytes: int = 64 * GiB  # one evidence file
    total_bytes: int = 1024 * GiB  # all members together
    ratio: int = 100  # uncompressed / compressed, for members over ratio_floor
    ratio_floor: int = MiB
    list_bytes: int = 64 * MiB  # manifest.csv and SHA256SUMS
    workbook_bytes: int = 2 * GiB  # report.xlsx
    workbook_members: int = 10_000  # entries inside report.xlsx
    part_bytes: int = 1 * GiB  # one XML part of the workbook, uncompressed
    part_ratio: int = 500  # XML compresses well; still bounded


LIMITS = Limits()


def verify_bundle(zip_path: str | Path, limits: Limits = LIMITS) -> list[str]:
    """Re-check a bundle; returns the problems found (empty when it is intact)."""
    try:
        return _verify(Path(zip_path), limits)
    except Exception as exc:  # noqa: BLE001 (the last guard: one line, never a traceback)
        return [f"{zip_path}: cannot be checked ({type(exc).__name__}: {exc})"]


def _verify(path: Path, limits: Limits) -> list[str]:
    problems: list[str] = []
    refusal = _check_directory(path, limits)
    if refusal:
        return [f"{path}: {refusal}"]
    try:
        zf = zipfile.ZipFile(path)
    except (*_READ_ERRORS, IndexError) as exc:
        return [f"{path}: not a readable ZIP file ({exc})"]
    with zf:
        members, names = _check_members(zf.infolist(), limits, problems)
        for required in (MANIFEST_NAME, WORKBOOK_NAME):
            if required not in names:
                problems.append(f"{required}: missing from the bundle")
        if MANIFEST_NAME not in members:
            return problems
        manifest = _read_manifest(zf, members[MANIFEST_NAME], limits, problems)
        _compare_files(zf, members, names, manifest, problems)
        if SUMS_NAME in members:
            _compare_sums(zf, members[SUMS_NAME], manifest, limits, problems)
        if WORKBOOK_NAME in members:
            _compare_workbook(zf, members[WORKBOOK_NAME], manifest, limits, problems)
    return problems


# The archive and its members ------------------------------------------------------------


def _check_directory(path: Path, limits: Limits) -> str | None:
    """Why the ZIP's directory is refused before parsing (None when it may be read)."""
    try:
        with path.open("rb") as fp:
            # zipfile's own reader of the end record (present since Python 2; private).
            end = zipfile._EndRecData(fp)  # noqa: SLF001
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not end:
        return "not a readable ZIP file (no end of central directory record)"
    entries, size = end[zipfile._ECD_ENTRIES_TOTAL], end[zipfile._ECD_SIZE]  # noqa: SLF001
    if entries > limits.members:
        return f"the ZIP lists {entries:,} members, more than the limit of {limits.members:,}"
    if size > limits.directory_bytes:
        return (
            f"the ZIP's directory is {size:,} bytes, more than the limit of "
            f"{limits.directory_bytes:,}"
        )
    return None


def unsafe_name(name: str) -> str | None:
    """Why a member name is unsafe to extract (None when it is fine)."""
    if not name:
        return "an empty name"
    if _UNSAFE_CHARS.search(name):
        return "a backslash or a control character in the name"
    if name.startswith("/") or _DRIVE.match(name):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "a '..' path component"
    return None


def _refusal(info: zipfile.ZipInfo, limits: Limits, *, ratio: int, most: int) -> str | None:
    """Why a member is not read: unsafe name, link, encryption or size (None: read it)."""
    reason = unsafe_name(info.orig_filename)
    if reason:
        return f"refused: {reason}"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "refused: a symbolic link"
    if info.flag_bits & 0x1:
        return "refused: encrypted"
    if info.file_size > most:
        return f"refused: declares {info.file_size:,} bytes, more than the limit of {most:,}"
    if info.file_size > limits.ratio_floor and info.file_size > ratio * max(info.compress_size, 1):
        found = info.file_size // max(info.compress_size, 1)
        return (
            f"refused: compression ratio {found:,}:1 is over the limit of {ratio}:1 "
            f"({info.file_size:,} bytes from {info.compress_size:,})"
        )
    return None


def _check_members(
    infos: list[zipfile.ZipInfo], limits: Limits, problems: list[str]
) -> tuple[dict[str, zipfile.ZipInfo], set[str]]:
    """The members that may be read (by name), and every file name in the ZIP; refused
    members, duplicates and an oversized total are problems."""
    members: dict[str, zipfile.ZipInfo] = {}
    names: set[str] = set()
    folded: dict[str, str] = {}
    total = 0
    for info in infos:
        name = info.orig_filename
        shown = repr(name) if unsafe_name(name) else name
        if name in names:
            problems.append(f"{shown}: refused: appears twice in the ZIP")
            members.pop(name, None)
            continue
        if name.lower() in folded:
            problems.append(f"{shown}: refused: differs only in case from {folded[name.lower()]}")
            continue
        folded[name.lower()] = name
        reason = _refusal(info, limits, ratio=limits.ratio, most=limits.member_bytes)
        if info.is_dir() and not reason:
            continue
        names.add(name)
        total += info.file_size
        if reason:
            problems.append(f"{shown}: {reason}")
            continue
        members[name] = info
    if total > limits.total_bytes:
        problems.append(
            f"the members declare {total:,} bytes, more than the limit of {limits.total_bytes:,}"
        )
        members.clear()
    return members, names


def _digest(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[str, int]:
    """SHA-256 and size of a member, streamed (zipfile stops at the declared size)."""
    digest = hashlib.sha256()
    size = 0
    with zf.open(info) as f:
        while chunk := f.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _read_text(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, encoding: str) -> str:
    """A small text member, read whole only when its declared size is within `limit`."""
    if info.file_size > limit:
        raise ValueError(f"{info.file_size:,} bytes, more than the limit of {limit:,}")
    with zf.open(info) as f:
        return f.read(limit + 1).decode(encoding, errors="replace")


# The manifest, the files, SHA256SUMS ---------------------------------------------------------


def _read_manifest(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, limits: Limits, problems: list[str]
) -> dict[str, tuple[str, int]]:
    manifest: dict[str, tuple[str, int]] = {}
    try:
        raw = _read_text(zf, info, limits.list_bytes, "utf-8-sig")
    except _READ_ERRORS as exc:
        problems.append(f"{MANIFEST_NAME}: cannot be read ({exc})")
        return manifest
    reader = csv.reader(io.StringIO(raw))
    header = next(reader, None)
    if header != ["path", "sha256", "size"]:
        problems.append(f"{MANIFEST_NAME}: the header must be path,sha256,size")
        return manifest
    for line, row in enumerate(reader, 2):
        if len(row) != 3 or not re.fullmatch(r"[0-9a-f]{64}", row[1]) or not row[2].isdigit():
            problems.append(f"{MANIFEST_NAME} line {line}: expected path,sha256,size")
            continue
        reason = unsafe_name(row[0])
        if reason:
            problems.append(f"{MANIFEST_NAME} line {line}: unsafe path {row[0]!r} ({reason})")
            continue
        manifest[row[0]] = (row[1], int(row[2]))
    return manifest


def _compare_files(
    zf: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    names: set[str],
    manifest: dict[str, tuple[str, int]],
    problems: list[str],
) -> None:
    """Each listed file's hash and size; files in the ZIP but not listed."""
    for path, (expected, size) in manifest.items():
        if path not in names:
            problems.append(f"{path}: listed in {MANIFEST_NAME} but not in the bundle")
            continue
        if path not in members:
            continue  # refused, already reported
        try:
            digest, actual = _digest(zf, members[path])
        except _READ_ERRORS as exc:
            problems.append(f"{path}: cannot be read ({exc})")
            continue
        if digest != expected:
            problems.append(f"{path}: SHA-256 {digest} does not match {MANIFEST_NAME} ({expected})")
        elif actual != size:
            problems.append(f"{path}: {actual} bytes, {MANIFEST_NAME} says {size}")
    extra = set(members) - set(manifest) - {MANIFEST_NAME, SUMS_NAME, README_NAME}
    for name in sorted(extra):
        problems.append(f"{name}: in the bundle but not listed in {MANIFEST_NAME}")


def _compare_sums(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, manifest: dict, limits: Limits, problems: list
) -> None:
    try:
        raw = _read_text(zf, info, limits.list_bytes, "utf-8")
    except _READ_ERRORS as exc:
        problems.append(f"{SUMS_NAME}: cannot be read ({exc})")
        return
    sums: dict[str, str] = {}
    for line in raw.splitlines():
        escaped = line.startswith("\\")
        digest, sep, path = line.lstrip("\\").partition("  ")
        if not sep:
            problems.append(f"{SUMS_NAME}: unreadable line {line[:80]!r}")
            continue
        if escaped:
            path = path.replace("\\n", "\n").replace("\\\\", "\\")
        sums[path] = digest
    for path, (expected, _size) in manifest.items():
        if sums.get(path) != expected:
            problems.append(f"{path}: {SUMS_NAME} does not agree with {MANIFEST_NAME}")
    for path in sorted(set(sums) - set(manifest)):
        problems.append(f"{path!r}: in {SUMS_NAME} but not in {MANIFEST_NAME}")


# The workbook's Evidence sheet -------------------------------------------------------------


class WorkbookUnreadable(Exception):
    """The workbook inside the bundle cannot be read within the limits."""


def _compare_workbook(
    zf: zipfile.ZipFile, info: zipfile.ZipInfo, manifest: dict, limits: Limits, problems: list
) -> None:
    """Every Evidence row's path, SHA-256 and size must be the manifest's, and every
    evidence file in the manifest must have its row."""
    if info.file_size > limits.workbook_bytes:
        problems.append(
            f"{WORKBOOK_NAME}: refused: declares {info.file_size:,} bytes, more than the "
            f"limit of {limits.workbook_bytes:,}"
        )
        return
    try:
        with zf.open(info) as raw:
            rows = _evidence_sheet(raw, limits)
    except WorkbookUnreadable as exc:
        problems.append(f"{WORKBOOK_NAME}: {exc}")
        return
    except (*_READ_ERRORS, etree.LxmlError) as exc:
        problems.append(f"{WORKBOOK_NAME}: cannot be read ({exc})")
        return
    referenced: set[str] = set()
    for row in rows:
        _compare_row(row, manifest, referenced, problems)
    for path in sorted(p for p in manifest if p.startswith("evidence/")):
        if path not in referenced:
            problems.append(f"{path}: not in the report's {EVIDENCE_SHEET} sheet")


def _compare_row(row: dict, manifest: dict, referenced: set[str], problems: list[str]) -> None:
    if row.get("id") is None:
        return
    who = f"evidence {row['id']} ({row.get('filename')})"
    path = row.get("path")
    if not path:
        problems.append(f"{who}: its file is not in the bundle (marked {row.get('check')})")
        return
    referenced.add(path)
    if path not in manifest:
        problems.append(f"{who}: {path} is not in {MANIFEST_NAME}")
        return
    expected, expected_size = manifest[path]
    if row.get("sha256") != expected:
        problems.append(
            f"{who}: the report's SHA-256 {row.get('sha256')} differs from {MANIFEST_NAME} "
            f"({expected}) for {path}"
        )
    elif row.get("size") != expected_size:
        problems.append(
            f"{who}: the report says {row.get('size')} bytes, {MANIFEST_NAME} {expected_size}"
        )


def _evidence_sheet(raw, limits: Limits) -> list[dict]:
    """The Evidence sheet's rows (the columns verify needs), read from the workbook's
    parts inside the bundle: no copy on disk, each XML part streamed."""
    try:
        book = zipfile.ZipFile(raw)
    except (*_READ_ERRORS, IndexError) as exc:
        raise WorkbookUnreadable(f"cannot be read (not an .xlsx file: {exc})") from exc
    with book:
        infos = book.infolist()
        if len(infos) > limits.workbook_members:
            raise WorkbookUnreadable(f"cannot be read ({len(infos):,} parts)")
        parts = {i.filename: i for i in infos}
        sheet_path, strings_path = _sheet_parts(book, parts, limits)
        rows, wanted = _sheet_rows(_open_part(book, parts, sheet_path, limits))
        strings = {}
        if wanted:
            if strings_path not in parts:
                raise WorkbookUnreadable("cannot be read (its shared strings are missing)")
            strings = _shared_strings(_open_part(book, parts, strings_path, limits), wanted)
    for row in rows:
        for key, value in row.items():
            if isinstance(value, _Shared):
                row[key] = strings.get(value.index)
    return rows


def _open_part(book: zipfile.ZipFile, parts: dict, name: str, limits: Limits):
    info = parts.get(name)
    if info is None:
        raise WorkbookUnreadable(f"cannot be read (its part {name} is missing)")
    reason = _refusal(info, limits, ratio=limits.part_ratio, most=limits.part_bytes)
    if reason:
        raise WorkbookUnreadable(f"its part {name}: {reason}")
    return book.open(info)


def _parse(stream, tag: str):
    """Stream the elements named `tag` (any namespace) of an XML part, cleared after use.
    No entities are expanded and no DTD or network is touched."""
    context = etree.iterparse(
        stream,
        events=("end",),
        tag=f"{{*}}{tag}",
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        huge_tree=False,
    )
    for _event, element in context:
        yield element
        element.clear(keep_tail=False)
        while element.getprevious() is not None:
            del element.getparent()[0]


def _local(element) -> str:
    return etree.QName(element).localname


def _sheet_parts(book: zipfile.ZipFile, parts: dict, limits: Limits) -> tuple[str, str]:
    """The paths of the Evidence sheet and of the shared strings inside the workbook."""
    rel_id = None
    with _open_part(book, parts, "xl/workbook.xml", limits) as f:
        for sheet in _parse(f, "sheet"):
            if sheet.get("name") == EVIDENCE_SHEET:
                rel_id = next((v for k, v in sheet.attrib.items() if k.endswith("}id")), None)
                break
    if rel_id is None:
        raise WorkbookUnreadable(f"no {EVIDENCE_SHEET} sheet")
    targets: dict[str, str] = {}
    strings = "xl/sharedStrings.xml"
    with _open_part(book, parts, "xl/_rels/workbook.xml.rels", limits) as f:
        for rel in _parse(f, "Relationship"):
            target = rel.get("Target") or ""
            target = target.lstrip("/") if target.startswith("/") else f"xl/{target}"
            targets[rel.get("Id") or ""] = target
            if (rel.get("Type") or "").endswith("/sharedStrings"):
                strings = target
    if rel_id not in targets:
        raise WorkbookUnreadable(f"cannot be read (the {EVIDENCE_SHEET} sheet's part is unknown)")
    return targets[rel_id], strings


@dataclass(frozen=True)
class _Shared:
    """A cell holding an index into the shared strings (resolved after the sheet)."""

    index: int


def _column(ref: str | None, position: int) -> int:
    """A cell's 0-based column from its reference ("L5" -> 11), else its position."""
    match = _CELL_REF.match(ref or "")
    if not match or not match.group(1):
        return position
    number = 0
    for letter in match.group(1):
        number = number * 26 + ord(letter) - 64
    return number - 1


def _value(cell):
    """A cell's value: shared-string index, inline or formula text, number, or None."""
    kind = cell.get("t") or "n"
    v = next((c for c in cell if _local(c) == "v"), None)
    if kind == "inlineStr":
        return "".join(t.text or "" for t in cell.iter("{*}t"))
    if v is None or v.text is None:
        return None
    if kind == "s":
        return _Shared(int(v.text))
    if kind == "n":
        number = float(v.text)
        return int(number) if number.is_integer() else number
    return v.text


def _sheet_rows(stream) -> tuple[list[dict], set[int]]:
    """The data rows (the header skipped) with the columns verify needs, and the shared
    string indices they refer to."""
    rows: list[dict] = []
    wanted: set[int] = set()
    with stream:
        for n, row in enumerate(_parse(stream, "row")):
            if n == 0:
                continue
            found: dict = {}
            for position, cell in enumerate(c for c in row if _local(c) == "c"):
                key = _EVIDENCE_COLUMNS.get(_column(cell.get("r"), position))
                if key is None:
                    continue
                found[key] = value = _value(cell)
                if isinstance(value, _Shared):
                    wanted.add(value.index)
            rows.append(found)
    return rows, wanted


def _shared_strings(stream, wanted: set[int]) -> dict[int, str]:
    """The shared strings at the wanted indices (the rest are skipped as they stream by)."""
    found: dict[int, str] = {}
    with stream:
        for index, item in enumerate(_parse(stream, "si")):
            if index in wanted:
                # Plain text, or rich-text runs; phonetic guides (rPh) are not the text.
                found[index] = "".join(
                    t.text or "" for t in item.iter("{*}t") if _local(t.getparent()) != "rPh"
                )
    return found
