"""The Summary sheet: key facts, rows per sheet, counts by category and result. Written
last (it reports on the other sheets), shown first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

import auditapp
from auditapp.models import Attestation, Check, Control
from auditapp.services import catalog
from auditapp.services.export.context import ExportContext
from auditapp.services.export.sheets import training
from auditapp.services.export.sheets.checks import current_attestation_join
from auditapp.services.export.words import category_title
from auditapp.services.export.writer import BOLD, TITLE_FONT, SheetWriter, text_cell

if TYPE_CHECKING:
    from auditapp.services.export.workbook import ExportResult

TITLE = "Summary"


def write(ctx: ExportContext, sheet: SheetWriter, result: ExportResult, generated_by: str) -> None:
    """Key facts, rows per sheet, counts by category and result; written last, shown first."""
    t = ctx.t
    s = ctx.session
    req = ctx.request
    with ctx.read():
        catalog_version = catalog.get_setting(s, catalog.CATALOG_VERSION_KEY)
        profile = catalog.profile(s).value
        by_result = _results_by_category(ctx)
    lines: list[tuple[str, Any]] = [
        (t("scope"), req.scope_label),
        (t("scope_from"), req.scope_from),
        (t("scope_to"), req.scope_to),
        (
            t("categories"),
            ", ".join(f"{c} {category_title(ctx.lang, c)}" for c in req.categories)
            if req.categories
            else t("all_categories"),
        ),
        (t("generated_at"), ctx.now),
        (t("generated_by"), generated_by),
        (t("timezone"), req.timezone),
        (t("app_version"), auditapp.__version__),
        (t("catalog_version"), catalog_version or t("na")),
        (t("profile"), t(f"profile_{profile}")),
        (t("chain_count"), result.audit_count),
        (t("chain_head"), result.audit_head),
    ]
    lines += [(t("rows_in") % name, count) for name, count in result.rows.items()]
    lines.append((t("evidence_problems"), len(result.missing)))
    lines.append((t("training_overall"), training.overall(ctx)))
    ws = sheet.ws
    sheet.start(header=False)
    title = text_cell(ws, t("title"))
    title.font = TITLE_FONT
    sheet.append_cells([title])
    if result.empty:
        sheet.append([t("nothing_in_scope")])
    sheet.append_cells([sheet.header_cell(t("item")), sheet.header_cell(t("value"))])
    for label, value in lines:
        sheet.append([label, value])
    sheet.append([])
    header = [t("category")] + [t(f"res_{r}") for r in ("effective", "deficient", "not_applicable")]
    header += [t("not_attested"), t("total")]
    sheet.append_cells([sheet.header_cell(h) for h in header])
    totals = [0, 0, 0, 0]
    for category in ctx.categories:
        counts = by_result.get(category, {})
        row = [
            counts.get("effective", 0),
            counts.get("deficient", 0),
            counts.get("not_applicable", 0),
            counts.get(None, 0),
        ]
        totals = [a + b for a, b in zip(totals, row, strict=True)]
        sheet.append([f"{category} {category_title(ctx.lang, category)}", *row, sum(row)])
    total_label = text_cell(ws, t("total"))
    total_label.font = BOLD
    sheet.append_cells([total_label, *totals, sum(totals)])


def _results_by_category(ctx: ExportContext) -> dict[str, dict[str | None, int]]:
    """In-scope checks per category by the result of their current attestation."""
    rows = ctx.session.execute(
        select(Control.category, Attestation.result, func.count())
        .select_from(Check)
        .join(Control, Control.id == Check.control_id)
        .outerjoin(Attestation, current_attestation_join())
        .where(ctx.check_scope())
        .group_by(Control.category, Attestation.result)
    ).all()
    found: dict[str, dict[str | None, int]] = {}
    for category, result, count in rows:
        found.setdefault(category, {})[result] = count
    return found
