"""Auditor export jobs: a request waits queued until a runner (the scheduler process, or
`auditapp export run-queued`) claims it, writes the workbook or bundle, and marks it done."""

from __future__ import annotations

import enum
import json
from datetime import date, datetime, timedelta

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from auditapp.extensions import db
from auditapp.models.types import UTCDateTime, utcnow


class ExportState(enum.StrEnum):
    """An export job's life cycle."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class ExportFailure(enum.StrEnum):
    """Why a job failed: an error while writing, or its runner stopped (no heartbeat)."""

    ERROR = "error"
    STALLED = "stalled"


class ExportJob(db.Model):
    """One auditor export: who asked, what for, where it stands, and what it wrote.

    `running_slot` is 1 while the job runs and NULL otherwise; it is UNIQUE, so the
    database itself keeps the rule of one export at a time per instance (NULLs never
    collide), whichever process claims.
    """

    __tablename__ = "export_job"
    __table_args__ = (Index("ix_export_job_state", "state", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)  # in URLs; unguessable
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    owner_label: Mapped[str] = mapped_column(String(300))
    # The request.
    scope_from: Mapped[date] = mapped_column(Date)
    scope_to: Mapped[date] = mapped_column(Date)
    scope_label: Mapped[str] = mapped_column(String(20), default="")  # e.g. "FY2026"
    categories: Mapped[str] = mapped_column(String(400), default="")  # ids; empty: all
    lang: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(64))
    bundle: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where the request came from (copied into the audit event when it is recorded).
    client_addr: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # Pinned jobs are run only by the process that created them (the synchronous CLI).
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    # State and progress.
    state: Mapped[str] = mapped_column(String(10), default=ExportState.QUEUED.value)
    running_slot: Mapped[int | None] = mapped_column(Integer, unique=True)
    runner: Mapped[str | None] = mapped_column(String(200))  # kind:host:pid
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What it wrote (the workbook is inside the bundle when no separate one was asked for).
    workbook_file: Mapped[str | None] = mapped_column(String(1000))
    workbook_size: Mapped[int | None] = mapped_column(BigInteger)
    workbook_sha256: Mapped[str | None] = mapped_column(String(64))
    bundle_file: Mapped[str | None] = mapped_column(String(1000))
    bundle_size: Mapped[int | None] = mapped_column(BigInteger)
    bundle_sha256: Mapped[str | None] = mapped_column(String(64))
    rows_json: Mapped[str | None] = mapped_column(Text)  # rows per sheet
    missing_json: Mapped[str | None] = mapped_column(Text)  # evidence files missing/altered
    failure: Mapped[str | None] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)

    @property
    def percent(self) -> int:
        if self.state == ExportState.DONE:
            return 100
        return min(100, int(100 * self.done / self.total)) if self.total else 0

    @property
    def suffix(self) -> str:
        return ".zip" if self.bundle else ".xlsx"

    @property
    def scope_text(self) -> str:
        """The scope as shown: the fiscal year asked for, or the dates."""
        return self.scope_label or f"{self.scope_from.isoformat()} – {self.scope_to.isoformat()}"

    @property
    def category_ids(self) -> list[str]:
        return self.categories.split()

    @property
    def download_name(self) -> str:
        """An ASCII file name for the download, e.g. auditor-export-FY2026-ja.xlsx."""
        scope = self.scope_label or f"{self.scope_from.isoformat()}_{self.scope_to.isoformat()}"
        kind = "-bundle" if self.bundle else ""
        return f"auditor-export-{scope}-{self.lang}{kind}{self.suffix}"

    @property
    def file_sha256(self) -> str | None:
        """The hash of the file offered for download (the bundle, or the workbook)."""
        return self.bundle_sha256 if self.bundle else self.workbook_sha256

    @property
    def file_size(self) -> int | None:
        return self.bundle_size if self.bundle else self.workbook_size

    @property
    def rows(self) -> dict[str, int]:
        return json.loads(self.rows_json) if self.rows_json else {}

    @property
    def missing(self) -> list[str]:
        return json.loads(self.missing_json) if self.missing_json else []

    def expires_at(self, keep_hours: float) -> datetime:
        return (self.finished_at or self.created_at) + timedelta(hours=keep_hours)
