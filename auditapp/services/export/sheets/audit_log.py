"""The Audit log sheet: the trail's entries dated in the range, with their chain hashes."""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import func, select

from auditapp.models import AuditEvent
from auditapp.services.export.context import ExportContext
from auditapp.services.export.writer import Column, Sheet


def _audit_columns(ctx: ExportContext) -> list[Column]:
    t = ctx.t
    return [
        Column(t("event_id"), 8),
        Column(t("at"), 18),
        Column(t("actor"), 28),
        Column(t("action"), 22),
        Column(t("object"), 18),
        Column(t("before"), 40),
        Column(t("after"), 40),
        Column(t("prev_hash"), 66),
        Column(t("hash"), 66),
    ]


def _audit_rows(ctx: ExportContext) -> Iterator[list]:
    """The trail's entries dated in the range (up to the head printed in the summary)."""

    def stmt(after):
        q = (
            select(
                AuditEvent.id,
                AuditEvent.at,
                AuditEvent.actor_label,
                AuditEvent.action,
                AuditEvent.object_type,
                AuditEvent.object_id,
                AuditEvent.before_json,
                AuditEvent.after_json,
                AuditEvent.prev_hash,
                AuditEvent.hash,
            )
            .where(ctx.audit_scope())
            .order_by(AuditEvent.id)
        )
        return q if after is None else q.where(AuditEvent.id > after)

    for rows, _extra in ctx.batches(stmt, lambda r: r.id):
        for r in rows:
            yield [
                r.id,
                r.at,
                r.actor_label,
                r.action,
                f"{r.object_type} #{r.object_id}" if r.object_id else r.object_type,
                r.before_json,
                r.after_json,
                r.prev_hash,
                r.hash,
            ]


def _count(ctx: ExportContext) -> int:
    with ctx.read():
        return (
            ctx.session.scalar(
                select(func.count()).select_from(AuditEvent).where(ctx.audit_scope())
            )
            or 0
        )


SHEET = Sheet("Audit log", _audit_columns, _audit_rows, _count)
