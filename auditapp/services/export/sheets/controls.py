"""The Controls sheet: each control in the export's language with its owner, the last
period and result in scope, and open findings."""

from __future__ import annotations

import json
from collections.abc import Iterator

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from auditapp.models import Check, Control, ControlStatus, Finding, FindingStatus, User
from auditapp.services.catalog import CATEGORIES
from auditapp.services.export.context import ExportContext
from auditapp.services.export.sheets.checks import (
    check_status_label,
    current_attestations,
    result_colours,
    status_colours,
)
from auditapp.services.export.words import WORDS, category_title
from auditapp.services.export.writer import Column, Sheet

_CATEGORY_ORDER = {c.id: c.order for c in CATEGORIES}


def controls_in_scope(ctx: ExportContext) -> list:
    """The categories' active controls and retired ones with checks in scope, in policy order."""
    decider = aliased(User)
    in_scope = (
        select(Check.id)
        .where(
            Check.control_id == Control.id,
            Check.period_start <= ctx.request.scope_to,
            Check.period_end >= ctx.request.scope_from,
        )
        .exists()
    )
    with ctx.read():
        rows = ctx.session.execute(
            select(
                Control.id,
                Control.code,
                Control.category,
                Control.position,
                Control.title_ja,
                Control.title_en,
                Control.content_json,
                Control.frequency,
                Control.frequency_override,
                Control.status,
                Control.applicable,
                Control.na_justification,
                Control.na_decided_at,
                User.name.label("owner_name"),
                decider.name.label("decider_name"),
            )
            .outerjoin(User, User.id == Control.owner_id)
            .outerjoin(decider, decider.id == Control.na_decided_by_id)
            .where(
                Control.category.in_(ctx.categories),
                or_(Control.status == ControlStatus.ACTIVE.value, in_scope),
            )
        ).all()
    return sorted(rows, key=lambda r: (_CATEGORY_ORDER.get(r.category, 99), r.position, r.code))


def _control_columns(ctx: ExportContext) -> list[Column]:
    t = ctx.t
    return [
        Column(t("control_id"), 11),
        Column(t("category"), 24),
        Column(t("control_title"), 45),
        Column(t("requirement"), 70),
        Column(t("references"), 30),
        Column(t("frequency"), 12),
        Column(t("owner"), 20),
        Column(t("last_period"), 14),
        Column(t("last_result"), 16, status_colours(ctx) | result_colours(ctx)),
        Column(t("open_findings"), 10),
    ]


def _references(ctx: ExportContext, refs: dict) -> str:
    parts = []
    for kind in ("policy", "guideline", "act"):
        if refs.get(kind):
            parts.append(f"{ctx.t('ref_' + kind)}: {', '.join(refs[kind])}")
    return "; ".join(parts)


def _latest_checks(ctx: ExportContext) -> dict[int, tuple[str, str]]:
    """Per control: the latest in-scope period and its result (or status when not attested)."""
    latest = (
        select(Check.control_id, func.max(Check.period_start).label("ps"))
        .join(Control, Control.id == Check.control_id)
        .where(ctx.check_scope())
        .group_by(Check.control_id)
        .subquery()
    )
    rows = ctx.session.execute(
        select(Check.id, Check.control_id, Check.period_key, Check.status, Check.due_date)
        .join(
            latest,
            and_(latest.c.control_id == Check.control_id, latest.c.ps == Check.period_start),
        )
        .order_by(Check.id)
    ).all()
    ids = [r.id for r in rows]
    results = current_attestations(ctx, ids)
    found: dict[int, tuple[str, str]] = {}
    for r in rows:
        attestation = results.get(r.id)
        label = (
            ctx.t(f"res_{attestation.result}")
            if attestation is not None
            else check_status_label(ctx, r.status, r.due_date)
        )
        found[r.control_id] = (r.period_key, label)
    return found


def _control_rows(ctx: ExportContext) -> Iterator[list]:
    """Each control: content in the export's language, owner, last period and open findings."""
    controls = controls_in_scope(ctx)
    with ctx.read():
        latest = _latest_checks(ctx)
        open_findings = dict(
            ctx.session.execute(
                select(Finding.control_id, func.count())
                .where(Finding.status != FindingStatus.CLOSED.value)
                .group_by(Finding.control_id)
            ).all()
        )
    for c in controls:
        content = json.loads(c.content_json or "{}")
        requirement = content.get("requirement") or {}
        frequency = c.frequency_override or c.frequency
        title = c.title_en if ctx.lang == "en" else c.title_ja
        if c.status != ControlStatus.ACTIVE.value:
            title += ctx.t("retired")
        last_period, last_result = latest.get(c.id, (None, None))
        yield [
            c.code,
            category_title(ctx.lang, c.category),
            title,
            requirement.get(ctx.lang) if isinstance(requirement, dict) else None,
            _references(ctx, content.get("references") or {}),
            ctx.t(f"freq_{frequency}") if f"freq_{frequency}" in WORDS else frequency,
            c.owner_name,
            last_period,
            last_result,
            open_findings.get(c.id, 0),
        ]


def count_controls(ctx: ExportContext) -> int:
    """The categories' controls (for the progress bar of Controls and Applicability)."""
    with ctx.read():
        return (
            ctx.session.scalar(
                select(func.count())
                .select_from(Control)
                .where(Control.category.in_(ctx.categories))
            )
            or 0
        )


SHEET = Sheet("Controls", _control_columns, _control_rows, count_controls)
