"""The scheduler's own records: runs of scheduled jobs and the lease of the one scheduler."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from auditapp.extensions import db
from auditapp.models.types import UTCDateTime, utcnow


class JobRun(db.Model):
    """One run of a scheduled job for a day (the scheduler's own record, for doctor)."""

    __tablename__ = "job_run"

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(40), index=True)
    run_for: Mapped[date] = mapped_column(Date)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ok: Mapped[bool | None] = mapped_column()
    message: Mapped[str | None] = mapped_column(Text)


class SchedulerLock(db.Model):
    """The lease that lets exactly one scheduler run jobs (SQLite; PostgreSQL also holds an
    advisory lock)."""

    __tablename__ = "scheduler_lock"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime)
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
