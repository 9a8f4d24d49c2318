"""The auditor export: an Excel workbook for a scope, and an evidence bundle to check offline.

The package, one room for each part:
- request.py: what to export (ExportRequest, make_request, fiscal_years);
- context.py: one run's scope conditions, short reads, shared values and progress;
- writer.py: columns, safe text cells, the streaming sheet writer, the Sheet description;
- words.py: the workbook's words in Japanese and English;
- sheets/: one module per sheet, in order in sheets.SHEETS (the Summary written last);
- workbook.py: write_workbook; bundle.py: write_bundle; verify.py: verify_bundle;
- jobs.py: export jobs in the database and the one flow every caller runs,
  run_and_record (claim → write → record → done).
"""

from __future__ import annotations

from auditapp.services.export.bundle import (
    MANIFEST_NAME,
    README_NAME,
    SUMS_NAME,
    WORKBOOK_NAME,
    write_bundle,
)
from auditapp.services.export.context import ExportContext, MissingEvidence
from auditapp.services.export.jobs import (
    ExportBusy,
    JobTaken,
    cleanup,
    enqueue,
    export_now,
    exports_dir,
    get_job,
    job_file,
    job_request,
    list_jobs,
    produce,
    purge_expired,
    record_download,
    record_export,
    run_and_record,
    run_queued,
    running_job,
    waiting_for,
)
from auditapp.services.export.request import (
    LANGUAGES,
    ExportRequest,
    fiscal_years,
    make_request,
    parse_categories,
    parse_scope,
)
from auditapp.services.export.sheets import SHEETS
from auditapp.services.export.verify import LIMITS, Limits, verify_bundle
from auditapp.services.export.workbook import ExportResult, write_workbook
from auditapp.services.export.writer import Column, Link, Sheet, SheetWriter, text_cell

__all__ = [
    "LANGUAGES",
    "LIMITS",
    "MANIFEST_NAME",
    "README_NAME",
    "SHEETS",
    "SUMS_NAME",
    "WORKBOOK_NAME",
    "Column",
    "ExportBusy",
    "ExportContext",
    "ExportRequest",
    "ExportResult",
    "JobTaken",
    "Limits",
    "Link",
    "MissingEvidence",
    "Sheet",
    "SheetWriter",
    "cleanup",
    "enqueue",
    "export_now",
    "exports_dir",
    "fiscal_years",
    "get_job",
    "job_file",
    "job_request",
    "list_jobs",
    "make_request",
    "parse_categories",
    "parse_scope",
    "produce",
    "purge_expired",
    "record_download",
    "record_export",
    "run_and_record",
    "run_queued",
    "running_job",
    "text_cell",
    "verify_bundle",
    "waiting_for",
    "write_bundle",
    "write_workbook",
]
