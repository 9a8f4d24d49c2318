"""The Evidence sheet: active evidence in scope with its SHA-256, what it is linked to,
the result of the file check and (in a bundle) a link to its path."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select

from auditapp.models import Check, Control, Evidence, EvidenceLink, Finding
from auditapp.services.export.context import ExportContext, MissingEvidence
from auditapp.services.export.writer import BAD, GOOD, Column, Link, Sheet

TITLE = "Evidence"


def _evidence_columns(ctx: ExportContext) -> list[Column]:
    t = ctx.t
    return [
        Column(t("evidence_id"), 9),
        Column(t("linked_to"), 30),
        Column(t("filename"), 30),
        Column(t("evidence_description"), 40),
        Column(t("media_type"), 18),
        Column(t("size"), 12),
        Column(t("sha256"), 66),
        Column(t("uploaded_by"), 24),
        Column(t("uploaded_at"), 18),
        Column(t("version"), 6),
        Column(
            t("file_check"),
            10,
            {t("file_missing"): BAD, t("file_altered"): BAD, t("file_ok"): GOOD},
        ),
        Column(t("bundle_path"), 50),
    ]


@dataclass(frozen=True)
class EvidenceLinkInfo:
    """Where an evidence item belongs: its label and the folder of its bundle path."""

    kind: str
    label: str
    control: str
    period: str
    rank: int  # bundle folder preference: check, then finding, then control


def _evidence_links(ctx: ExportContext, rows: list) -> dict[int, list[EvidenceLinkInfo]]:
    """The links of a batch of evidence items, described (inside the caller's read)."""
    ids = [r.id for r in rows]
    links = ctx.session.execute(
        select(EvidenceLink.evidence_id, EvidenceLink.object_type, EvidenceLink.object_id)
        .where(EvidenceLink.evidence_id.in_(ids))
        .order_by(EvidenceLink.evidence_id, EvidenceLink.id)
    ).all()
    check_ids = {
        int(x.object_id) for x in links if x.object_type == "check" and x.object_id.isdigit()
    }
    finding_ids = {
        int(x.object_id) for x in links if x.object_type == "finding" and x.object_id.isdigit()
    }
    checks = {
        r.id: r
        for r in ctx.session.execute(
            select(Check.id, Control.code, Check.period_key)
            .join(Control, Control.id == Check.control_id)
            .where(Check.id.in_(check_ids))
        )
    }
    findings = {
        r.id: r
        for r in ctx.session.execute(
            select(Finding.id, Control.code, Check.period_key)
            .join(Control, Control.id == Finding.control_id)
            .outerjoin(Check, Check.id == Finding.check_id)
            .where(Finding.id.in_(finding_ids))
        )
    }
    found: dict[int, list[EvidenceLinkInfo]] = {}
    t = ctx.t
    for x in links:
        link = None
        if x.object_type == "check" and x.object_id.isdigit() and int(x.object_id) in checks:
            c = checks[int(x.object_id)]
            link = EvidenceLinkInfo(
                "check",
                f"{t('link_check')} {c.id} {c.code} {c.period_key}",
                c.code,
                c.period_key,
                0,
            )
        elif x.object_type == "finding" and x.object_id.isdigit() and int(x.object_id) in findings:
            f = findings[int(x.object_id)]
            link = EvidenceLinkInfo(
                "finding",
                f"{t('link_finding')} {f.id} {f.code}",
                f.code,
                f.period_key or "general",
                1,
            )
        elif x.object_type == "control":
            link = EvidenceLinkInfo(
                "control", f"{t('link_control')} {x.object_id}", x.object_id, "general", 2
            )
        elif x.object_type not in ("check", "finding"):
            link = EvidenceLinkInfo(
                x.object_type, f"{x.object_type} {x.object_id}", "other", "general", 3
            )
        if link is not None:
            found.setdefault(x.evidence_id, []).append(link)
    return found


def evidence_batches(
    ctx: ExportContext,
) -> Iterator[tuple[list, dict[int, list[EvidenceLinkInfo]]]]:
    def stmt(after):
        q = (
            select(
                Evidence.id,
                Evidence.filename,
                Evidence.description,
                Evidence.media_type,
                Evidence.size,
                Evidence.sha256,
                Evidence.uploaded_by_label,
                Evidence.uploaded_at,
                Evidence.version,
            )
            .where(ctx.evidence_scope())
            .order_by(Evidence.id)
        )
        return q if after is None else q.where(Evidence.id > after)

    yield from ctx.batches(stmt, lambda r: r.id, lambda rows: _evidence_links(ctx, rows))


def _evidence_rows(ctx: ExportContext) -> Iterator[list]:
    """Each in-scope evidence item; those whose file is missing or altered are marked and
    collected in `ctx.missing` (checked against `ctx.file_status` from a bundle copy, or
    against `ctx.store` when given)."""
    t = ctx.t
    labels = {"ok": t("file_ok"), "missing": t("file_missing"), "altered": t("file_altered")}
    for rows, links in evidence_batches(ctx):
        for r in rows:
            status = None
            if ctx.file_status is not None:
                status = ctx.file_status.get(r.id, "missing")
            elif ctx.store is not None:
                status = "ok" if ctx.store.exists(r.sha256) else "missing"
            if status in ("missing", "altered"):
                ctx.missing.append(MissingEvidence(r.id, r.sha256, r.filename, status))
            path = ctx.bundle_paths.get(r.id) if status != "missing" else None
            yield [
                r.id,
                "; ".join(link.label for link in links.get(r.id, [])),
                r.filename,
                r.description,
                r.media_type,
                r.size,
                r.sha256,
                r.uploaded_by_label,
                r.uploaded_at,
                r.version,
                labels.get(status) if status else None,
                Link(path) if path else None,
            ]


def _count(ctx: ExportContext) -> int:
    with ctx.read():
        return (
            ctx.session.scalar(
                select(func.count()).select_from(Evidence).where(ctx.evidence_scope())
            )
            or 0
        )


SHEET = Sheet(TITLE, _evidence_columns, _evidence_rows, _count)
