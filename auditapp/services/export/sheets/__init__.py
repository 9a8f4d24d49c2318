"""The sheets of the auditor workbook, in their order after the Summary (which is written
last, as it reports on the others): an explicit list, nothing registers itself."""

from __future__ import annotations

from auditapp.services.export.sheets import (
    applicability,
    audit_log,
    checks,
    controls,
    evidence,
    findings,
    training,
)
from auditapp.services.export.writer import Sheet

SHEETS: list[Sheet] = [
    applicability.SHEET,
    controls.SHEET,
    checks.SHEET,
    findings.SHEET,
    evidence.SHEET,
    training.TRAINING,
    training.BY_DEPARTMENT,
    audit_log.SHEET,
]
