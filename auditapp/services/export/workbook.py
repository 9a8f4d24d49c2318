"""The auditor workbook: every sheet of `sheets.SHEETS` after the Summary, written in
openpyxl's write-only (streaming) mode to a partial file moved into place once complete.

Scope: checks whose period overlaps [from, to] in the chosen categories; findings of those
checks or created in the range; active evidence linked to those checks and findings, or to
the categories' controls and uploaded by `to` (withdrawn evidence is never exported);
audit-trail entries dated in the range; the categories' controls; the training status of
every active person.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auditapp.models import AuditEvent, Evidence
from auditapp.services import audit
from auditapp.services.export.context import ExportContext, MissingEvidence
from auditapp.services.export.request import ExportRequest
from auditapp.services.export.sheets import SHEETS, summary
from auditapp.services.export.writer import Column, SheetWriter
from auditapp.storage import EvidenceStore, sha256_file

# Sheets whose rows make an export non-empty (controls alone do not).
_SCOPED = ("Checks", "Findings", "Evidence", "Audit log")


@dataclass
class ExportResult:
    """What an export wrote: data rows per sheet, evidence files missing or altered, the
    chain head printed in it, and the file written (workbook, or bundle) with its hash."""

    rows: dict[str, int] = field(default_factory=dict)
    missing: list[MissingEvidence] = field(default_factory=list)
    audit_count: int = 0
    audit_head: str = ""
    path: Path | None = None
    sha256: str = ""
    size: int = 0
    bundle_files: int = 0
    workbook_sha256: str = ""
    workbook_size: int = 0

    @property
    def empty(self) -> bool:
        """Nothing was in scope (controls aside)."""
        return not any(self.rows.get(name) for name in _SCOPED)


def check_clean(session: Session) -> None:
    """Batches end their transactions with a rollback: nothing may be pending."""
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("commit or roll back pending changes before exporting")
    session.rollback()


def snapshot(ctx: ExportContext) -> tuple[int, str]:
    """The audit trail's entry count and head hash, read together with the ids that bound
    the audit log and evidence sheets."""
    with ctx.read():
        head = audit.head(ctx.session)
        count = ctx.session.scalar(select(func.count()).select_from(AuditEvent)) or 0
        ctx.audit_head_id = ctx.session.scalar(select(func.max(AuditEvent.id))) or 0
        ctx.evidence_max_id = ctx.session.scalar(select(func.max(Evidence.id))) or 0
    return count, head


def count_rows(ctx: ExportContext) -> int:
    """Rows the sheets will hold (for the progress bar)."""
    return sum(int(sheet.count(ctx) or 0) for sheet in SHEETS)


def write_workbook(
    session: Session,
    request: ExportRequest,
    out_path: str | Path,
    *,
    generated_by: str,
    progress: Callable[[int, int], None] | None = None,
    store: EvidenceStore | None = None,
    now: datetime | None = None,
) -> ExportResult:
    """Write the auditor workbook to `out_path` (replaced only once complete).

    store: when given, each evidence file's presence is checked (missing rows are marked).
    """
    check_clean(session)
    ctx = ExportContext(session, request, now=now, progress=progress)
    ctx.store = store
    chain = snapshot(ctx)
    ctx.total = count_rows(ctx)
    return write_sheets(ctx, Path(out_path), generated_by=generated_by, chain=chain)


def write_sheets(
    ctx: ExportContext, out: Path, *, generated_by: str, chain: tuple[int, str]
) -> ExportResult:
    """Write every sheet, then the Summary, to a partial file; move it to `out`."""
    result = ExportResult(audit_count=chain[0], audit_head=chain[1])
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.part")
    try:
        wb = Workbook(write_only=True)
        wb.properties.creator = "auditapp"
        wb.properties.title = ctx.t("title")
        front = SheetWriter(
            wb,
            summary.TITLE,
            [Column(ctx.t("item"), 40), Column(ctx.t("value"), 70)]
            + [Column("", 14) for _ in range(4)],
            ctx.tz,
        )
        for sheet in SHEETS:
            writer = SheetWriter(wb, sheet.title, sheet.columns(ctx), ctx.tz)
            for row in sheet.rows(ctx):
                writer.append(row)
                ctx.advance()
            result.rows[sheet.title] = writer.finish()
        result.missing = ctx.missing
        summary.write(ctx, front, result, generated_by)
        wb.save(tmp)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    result.path = out
    result.sha256, result.size = sha256_file(out)
    result.workbook_sha256, result.workbook_size = result.sha256, result.size
    ctx.complete()
    return result
