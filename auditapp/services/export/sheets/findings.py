"""The Findings sheet: findings of in-scope checks or created in the range."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select

from auditapp.models import Check, Control, Finding, FindingStatus, User
from auditapp.services.export.context import ExportContext
from auditapp.services.export.words import WORDS
from auditapp.services.export.writer import BAD, GOOD, INFO, WARN, Column, Sheet


def _finding_columns(ctx: ExportContext) -> list[Column]:
    t = ctx.t
    return [
        Column(t("finding_id"), 9),
        Column(t("control"), 10),
        Column(t("period"), 13),
        Column(t("description"), 50),
        Column(
            t("risk"),
            9,
            {t("risk_critical"): BAD, t("risk_high"): BAD, t("risk_medium"): WARN},
        ),
        Column(t("plan"), 50),
        Column(t("owner"), 20),
        Column(t("due_date"), 12),
        Column(
            t("status"),
            16,
            {
                t("fs_overdue"): BAD,
                t("fs_open"): WARN,
                t("fs_closure_submitted"): INFO,
                t("fs_closed"): GOOD,
            },
        ),
        Column(t("created_at"), 18),
        Column(t("closing_note"), 40),
        Column(t("review_comment"), 40),
        Column(t("closed_at"), 18),
    ]


def _finding_rows(ctx: ExportContext) -> Iterator[list]:
    """Findings of in-scope checks or created in the range."""
    t = ctx.t

    def stmt(after):
        q = (
            select(
                Finding.id,
                Control.code,
                Check.period_key,
                Finding.description,
                Finding.risk,
                Finding.remediation_plan,
                User.name.label("owner_name"),
                Finding.due_date,
                Finding.status,
                Finding.created_at,
                Finding.closing_note,
                Finding.review_comment,
                Finding.closed_at,
            )
            .join(Control, Control.id == Finding.control_id)
            .outerjoin(Check, Check.id == Finding.check_id)
            .outerjoin(User, User.id == Finding.owner_id)
            .where(ctx.finding_scope())
            .order_by(Finding.id)
        )
        return q if after is None else q.where(Finding.id > after)

    for rows, _extra in ctx.batches(stmt, lambda r: r.id):
        for r in rows:
            overdue = r.status == FindingStatus.OPEN.value and r.due_date < ctx.today
            status = "overdue" if overdue else r.status
            yield [
                r.id,
                r.code,
                r.period_key,
                r.description,
                t(f"risk_{r.risk}") if f"risk_{r.risk}" in WORDS else r.risk,
                r.remediation_plan,
                r.owner_name,
                r.due_date,
                t(f"fs_{status}") if f"fs_{status}" in WORDS else status,
                r.created_at,
                r.closing_note,
                r.review_comment,
                r.closed_at,
            ]


def _count(ctx: ExportContext) -> int:
    with ctx.read():
        return (
            ctx.session.scalar(
                select(func.count())
                .select_from(Finding)
                .join(Control, Control.id == Finding.control_id)
                .where(ctx.finding_scope())
            )
            or 0
        )


SHEET = Sheet("Findings", _finding_columns, _finding_rows, _count)
