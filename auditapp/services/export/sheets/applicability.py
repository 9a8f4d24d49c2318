"""The Applicability sheet: the statement of applicability (every active control,
applicable or not, and why)."""

from __future__ import annotations

from collections.abc import Iterator

from auditapp.models import ControlStatus
from auditapp.services.export.context import ExportContext
from auditapp.services.export.sheets.controls import controls_in_scope, count_controls
from auditapp.services.export.words import category_title
from auditapp.services.export.writer import GOOD, MUTED, Column, Sheet


def _applicability_columns(ctx: ExportContext) -> list[Column]:
    t = ctx.t
    return [
        Column(t("control_id"), 11),
        Column(t("category"), 24),
        Column(t("control_title"), 50),
        Column(t("applicable"), 10, {t("no"): MUTED, t("yes"): GOOD}),
        Column(t("justification"), 50),
        Column(t("decided_by"), 20),
        Column(t("decided_at"), 18),
    ]


def _applicability_rows(ctx: ExportContext) -> Iterator[list]:
    """The statement of applicability: every active control, applicable or not, and why."""
    t = ctx.t
    for c in controls_in_scope(ctx):
        if c.status != ControlStatus.ACTIVE.value:
            continue
        yield [
            c.code,
            category_title(ctx.lang, c.category),
            c.title_en if ctx.lang == "en" else c.title_ja,
            t("yes") if c.applicable else t("no"),
            c.na_justification,
            c.decider_name,
            c.na_decided_at,
        ]


SHEET = Sheet("Applicability", _applicability_columns, _applicability_rows, count_controls)
