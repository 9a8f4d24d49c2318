"""The evidence bundle: a ZIP with the workbook, every in-scope evidence file, a manifest of
hashes (CSV and sha256sum format) and a README telling an auditor how to check them.

The bundle copies evidence from the store in 1 MiB chunks into stored ZIP64 entries, so
memory stays bounded whatever the file sizes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
import secrets
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

import auditapp
from auditapp.services.export.context import ExportContext
from auditapp.services.export.request import ExportRequest
from auditapp.services.export.sheets.evidence import evidence_batches
from auditapp.services.export.workbook import (
    ExportResult,
    check_clean,
    count_rows,
    snapshot,
    write_sheets,
)
from auditapp.storage import CHUNK_SIZE, BlobMissing, EvidenceStore, sha256_file

WORKBOOK_NAME = "report.xlsx"
MANIFEST_NAME = "manifest.csv"
SUMS_NAME = "SHA256SUMS"
README_NAME = "README.txt"
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{n}" for p in ("COM", "LPT") for n in "123456789"
}


@dataclass
class _BundleItem:
    evidence_id: int
    sha256: str
    size: int
    filename: str
    uploaded_at: datetime
    path: str


def _path_part(value: str, fallback: str) -> str:
    """One safe path component (no separators, no dot-only names, no Windows device names)."""
    value = re.sub(r'[\\/:*?"<>|\x00-\x1f\x7f]', "_", value or "").strip(" .")
    if not value:
        value = fallback
    stem = value.split(".")[0].upper()
    if stem in _WINDOWS_RESERVED:
        value = "_" + value
    return value[:120]


def _unique(path: str, taken: set[str]) -> str:
    """The path, or "name (2).ext", "name (3).ext" ... when taken (case-insensitively, as on
    Windows and macOS file systems)."""
    if path.lower() not in taken:
        taken.add(path.lower())
        return path
    folder, _, name = path.rpartition("/")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    n = 2
    while True:
        candidate = f"{folder}/{stem} ({n}){'.' + ext if ext else ''}"
        if candidate.lower() not in taken:
            taken.add(candidate.lower())
            return candidate
        n += 1


def _plan_bundle(ctx: ExportContext) -> list[_BundleItem]:
    """Each in-scope evidence item's path: evidence/<control id>/<period>/<file name>."""
    items: list[_BundleItem] = []
    taken: set[str] = set()
    for rows, links in evidence_batches(ctx):
        for r in rows:
            chosen = sorted(links.get(r.id, []), key=lambda link: link.rank)
            control, period = (
                (chosen[0].control, chosen[0].period) if chosen else ("other", "general")
            )
            path = "/".join(
                [
                    "evidence",
                    _path_part(control, "control"),
                    _path_part(period, "general"),
                    _path_part(r.filename, f"evidence-{r.id}"),
                ]
            )
            items.append(
                _BundleItem(r.id, r.sha256, r.size, r.filename, r.uploaded_at, _unique(path, taken))
            )
    return items


def _zip_entry(zf: zipfile.ZipFile, name: str, when: datetime, *, compress: bool):
    """A ZIP entry open for writing (streamed; ZIP64 so any size fits)."""
    stamp = max(when, datetime(1980, 1, 1, tzinfo=when.tzinfo))
    info = zipfile.ZipInfo(name, date_time=stamp.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    return zf.open(info, "w", force_zip64=True)


def _copy_file(
    zf: zipfile.ZipFile, name: str, source, when: datetime, ctx: ExportContext | None = None
) -> tuple[str, int]:
    """Copy a stream into a stored ZIP entry in 1 MiB chunks; returns its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    with _zip_entry(zf, name, when, compress=False) as dst:
        while chunk := source.read(CHUNK_SIZE):
            digest.update(chunk)
            dst.write(chunk)
            size += len(chunk)
            if ctx is not None:
                ctx.advance()
    return digest.hexdigest(), size


def write_bundle(
    session: Session,
    store: EvidenceStore,
    request: ExportRequest,
    zip_path: str | Path,
    *,
    generated_by: str,
    workbook_path: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Write a ZIP with report.xlsx, every in-scope evidence file, manifest.csv, SHA256SUMS
    and README.txt; the workbook is also kept at `workbook_path` when given.

    Files missing from the store are left out and marked in the workbook; files whose
    bytes no longer match their hash are included as found and marked altered. The ZIP
    (and a workbook of its own) are written to `.<name>.<random>.part` files next to the
    target and moved into place only once complete.
    """
    check_clean(session)
    ctx = ExportContext(session, request, now=now, progress=progress)
    chain = snapshot(ctx)
    rows = count_rows(ctx)
    plan = _plan_bundle(ctx)
    ctx.total = rows + sum(_chunks(i.size) for i in plan)
    target = Path(zip_path)
    tmp_zip = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    workbook = (
        Path(workbook_path)
        if workbook_path
        else target.with_name(f".{target.name}.{secrets.token_hex(4)}.xlsx.part")
    )
    try:
        with zipfile.ZipFile(tmp_zip, "w", allowZip64=True) as zf:
            manifest = _copy_evidence(ctx, zf, store, plan)
            result = write_sheets(ctx, workbook, generated_by=generated_by, chain=chain)
            _add_listings(ctx, zf, workbook, manifest, result, generated_by)
        os.replace(tmp_zip, target)
    finally:
        tmp_zip.unlink(missing_ok=True)
        if not workbook_path:
            workbook.unlink(missing_ok=True)
    result.bundle_files = len(manifest) - 1
    result.path = target
    result.sha256, result.size = sha256_file(target)
    return result


def _chunks(size: int) -> int:
    """Progress steps of copying a file (one per 1 MiB chunk, at least one)."""
    return max(1, math.ceil(size / CHUNK_SIZE))


def _copy_evidence(
    ctx: ExportContext, zf: zipfile.ZipFile, store: EvidenceStore, plan: list[_BundleItem]
) -> list[tuple[str, str, int]]:
    """Copy each planned file into the ZIP; note in `ctx` where each went and whether it
    was found intact, missing or altered. Returns the manifest rows written."""
    manifest: list[tuple[str, str, int]] = []
    status: dict[int, str] = {}
    for item in plan:
        try:
            source = store.open(item.sha256)
        except BlobMissing:
            status[item.evidence_id] = "missing"
            ctx.advance(_chunks(item.size))
            continue
        with source:
            when = item.uploaded_at.astimezone(ctx.tz)
            digest, size = _copy_file(zf, item.path, source, when, ctx)
        manifest.append((item.path, digest, size))
        ctx.bundle_paths[item.evidence_id] = item.path
        status[item.evidence_id] = "ok" if digest == item.sha256 else "altered"
    ctx.file_status = status
    return manifest


def _add_listings(
    ctx: ExportContext,
    zf: zipfile.ZipFile,
    workbook: Path,
    manifest: list[tuple[str, str, int]],
    result: ExportResult,
    generated_by: str,
) -> None:
    """The workbook, manifest.csv, SHA256SUMS and README.txt, after the evidence files."""
    now_local = ctx.now.astimezone(ctx.tz)
    with workbook.open("rb") as source:
        digest, size = _copy_file(zf, WORKBOOK_NAME, source, now_local)
    manifest.append((WORKBOOK_NAME, digest, size))
    with _zip_entry(zf, MANIFEST_NAME, now_local, compress=True) as f:
        f.write(_manifest_csv(manifest))
    with _zip_entry(zf, SUMS_NAME, now_local, compress=True) as f:
        f.write(_sha256sums(manifest))
    with _zip_entry(zf, README_NAME, now_local, compress=True) as f:
        f.write(_readme(ctx, result, generated_by, len(manifest) - 1).encode("utf-8"))


def _manifest_csv(rows: list[tuple[str, str, int]]) -> bytes:
    """path,sha256,size with a BOM (Excel reads the Japanese names right). Every path starts
    with "evidence/" or is report.xlsx, so no cell can start like a formula."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["path", "sha256", "size"])
    writer.writerows(rows)
    return out.getvalue().encode("utf-8-sig")


def _sha256sums(rows: list[tuple[str, str, int]]) -> bytes:
    """The `sha256sum` format ("<hash>  <path>"), names escaped as GNU coreutils does."""
    lines = []
    for path, digest, _size in rows:
        if "\\" in path or "\n" in path:
            escaped = path.replace("\\", "\\\\").replace("\n", "\\n")
            lines.append(f"\\{digest}  {escaped}\n")
        else:
            lines.append(f"{digest}  {path}\n")
    return "".join(lines).encode("utf-8")


def _readme(ctx: ExportContext, result: ExportResult, generated_by: str, files: int) -> str:
    """How an auditor checks the bundle with standard tools (Japanese, then English)."""
    req = ctx.request
    when = ctx.now.astimezone(ctx.tz).strftime("%Y-%m-%d %H:%M")
    text_ = f"""監査人向けエビデンスバンドル / Auditor evidence bundle
=====================================================

対象範囲 / Scope: {req.scope_label}
作成日時 / Generated at: {when} ({req.timezone})
作成者 / Generated by: {generated_by}
アプリケーション / Application: auditapp {auditapp.__version__}
監査証跡の先頭ハッシュ / Audit-chain head: {result.audit_head} ({result.audit_count} entries)
証跡ファイル数 / Evidence files: {files}

内容 / Contents
  report.xlsx   監査用ワークブック（Evidence シートに各ファイルの SHA-256 とパス）
                the workbook (its Evidence sheet lists each file's SHA-256 and path)
  evidence/     証跡ファイル（evidence/<管理策ID>/<期間>/<ファイル名>）
                evidence files (evidence/<control id>/<period>/<file name>)
  manifest.csv  path,sha256,size（report.xlsx を含む全ファイル）
                path,sha256,size of every file, report.xlsx included
  SHA256SUMS    sha256sum 形式の同じ一覧 / the same list in sha256sum format

ハッシュの確認方法（ZIP を展開したフォルダで実行）
How to check the hashes (run inside the folder the ZIP was extracted to)

  Linux:    sha256sum -c SHA256SUMS
  macOS:    shasum -a 256 -c SHA256SUMS
  Windows (PowerShell):
    Import-Csv manifest.csv | ForEach-Object {{
      $h = (Get-FileHash -Algorithm SHA256 -LiteralPath $_.path).Hash.ToLower()
      if ($h -ne $_.sha256) {{ "MISMATCH $($_.path)" }} else {{ "OK $($_.path)" }}
    }}
  Windows (1 file): certutil -hashfile "evidence\\<...>\\<file>" SHA256

すべて OK であれば、ファイルは作成時から変更されていません。report.xlsx の Evidence
シートの SHA-256 は、アップロード時に記録されたハッシュです（manifest.csv と一致します）。
auditapp が使える環境では `auditapp export verify <bundle.zip>` で一括確認できます。

All lines OK means no file changed since the bundle was made. The SHA-256 in the Evidence
sheet of report.xlsx is the hash recorded at upload (it matches manifest.csv). Where
auditapp is installed, `auditapp export verify <bundle.zip>` checks everything at once.
"""
    return text_.replace("\n", "\r\n")
