"""The Checks sheet: each in-scope check with its current attestation, review and evidence
count; the status and result words other sheets share."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

from sqlalchemy import String, and_, cast, func, select, tuple_

from auditapp.models import (
    Attestation,
    Check,
    CheckStatus,
    Control,
    Evidence,
    EvidenceLink,
    EvidenceStatus,
    Review,
)
from auditapp.services.export.context import ExportContext
from auditapp.services.export.words import WORDS
from auditapp.services.export.writer import BAD, GOOD, INFO, MUTED, WARN, Column, Sheet


def status_colours(ctx: ExportContext) -> dict[str, str]:
    return {
        ctx.t("st_overdue"): BAD,
        ctx.t("st_returned"): BAD,
        ctx.t("st_open"): WARN,
        ctx.t("st_attested"): INFO,
        ctx.t("st_accepted"): GOOD,
    }


def result_colours(ctx: ExportContext) -> dict[str, str]:
    return {
        ctx.t("res_effective"): GOOD,
        ctx.t("res_deficient"): BAD,
        ctx.t("res_not_applicable"): MUTED,
    }


def check_status_label(ctx: ExportContext, status: str, due: date) -> str:
    if status in (CheckStatus.OPEN.value, CheckStatus.RETURNED.value) and due < ctx.today:
        return ctx.t("st_overdue")
    key = f"st_{status}"
    return ctx.t(key) if key in WORDS else status


def _check_columns(ctx: ExportContext) -> list[Column]:
    t = ctx.t
    return [
        Column(t("check_id"), 9),
        Column(t("control"), 10),
        Column(t("period"), 13),
        Column(t("due_date"), 12),
        Column(t("status"), 14, status_colours(ctx)),
        Column(t("attester"), 24),
        Column(t("attested_at"), 18),
        Column(t("result"), 12, result_colours(ctx)),
        Column(t("statement"), 60),
        Column(t("evidence_count"), 9),
        Column(t("reviewer"), 24),
        Column(t("reviewed_at"), 18),
        Column(t("review_comment"), 40),
    ]


def current_attestations(ctx: ExportContext, check_ids: list[int]) -> dict[int, Any]:
    """The newest attestation of each check (inside the caller's read)."""
    if not check_ids:
        return {}
    rows = ctx.session.execute(
        select(
            Attestation.id,
            Attestation.check_id,
            Attestation.sequence,
            Attestation.attester_name,
            Attestation.attested_at,
            Attestation.result,
            Attestation.statement,
        ).where(Attestation.check_id.in_(check_ids))
    ).all()
    found: dict[int, Any] = {}
    for row in rows:
        current = found.get(row.check_id)
        if current is None or row.sequence > current.sequence:
            found[row.check_id] = row
    return found


def current_attestation_join():
    """An ON clause joining each check to its newest attestation (correlated on the unique
    (check_id, sequence) index, so no IN lists and no grouping of the whole table)."""
    newest = (
        select(func.max(Attestation.sequence))
        .where(Attestation.check_id == Check.id)
        .correlate(Check)
        .scalar_subquery()
    )
    return and_(Attestation.check_id == Check.id, Attestation.sequence == newest)


def _check_rows(ctx: ExportContext) -> Iterator[list]:
    """Each in-scope check with its current attestation, review and evidence count, one
    keyset query per batch."""
    t = ctx.t
    results = {r: t(f"res_{r}") for r in ("effective", "deficient", "not_applicable")}
    evidence_count = (
        select(func.count())
        .select_from(EvidenceLink)
        .join(Evidence, Evidence.id == EvidenceLink.evidence_id)
        .where(
            EvidenceLink.object_type == "check",
            EvidenceLink.object_id == cast(Check.id, String),
            Evidence.status == EvidenceStatus.ACTIVE.value,
        )
        .correlate(Check)
        .scalar_subquery()
    )

    def stmt(after):
        q = (
            select(
                Check.id,
                Check.control_id,
                Control.code,
                Check.period_key,
                Check.due_date,
                Check.status,
                Attestation.attester_name,
                Attestation.attested_at,
                Attestation.result,
                Attestation.statement,
                evidence_count.label("evidence_count"),
                Review.reviewer_name,
                Review.reviewed_at,
                Review.comment,
            )
            .join(Control, Control.id == Check.control_id)
            .outerjoin(Attestation, current_attestation_join())
            .outerjoin(Review, Review.attestation_id == Attestation.id)
            .where(ctx.check_scope())
            .order_by(Check.control_id, Check.period_key)
        )
        if after is not None:
            q = q.where(tuple_(Check.control_id, Check.period_key) > tuple_(*after))
        return q

    for rows, _extra in ctx.batches(stmt, lambda r: (r.control_id, r.period_key)):
        for r in rows:
            yield [
                r.id,
                r.code,
                r.period_key,
                r.due_date,
                check_status_label(ctx, r.status, r.due_date),
                r.attester_name,
                r.attested_at,
                results.get(r.result, r.result),
                r.statement,
                r.evidence_count,
                r.reviewer_name,
                r.reviewed_at,
                r.comment,
            ]


def _count(ctx: ExportContext) -> int:
    with ctx.read():
        return (
            ctx.session.scalar(
                select(func.count())
                .select_from(Check)
                .join(Control, Control.id == Check.control_id)
                .where(ctx.check_scope())
            )
            or 0
        )


SHEET = Sheet("Checks", _check_columns, _check_rows, _count)
