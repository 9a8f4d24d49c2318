"""Reminders sent: the record that keeps each reminder to one per object, person and cycle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from auditapp.extensions import db
from auditapp.models.types import UTCDateTime, utcnow


class SentReminder(db.Model):
    """A reminder sent: at most one per kind, object, recipient and cycle."""

    __tablename__ = "notification"
    __table_args__ = (
        UniqueConstraint("kind", "object_type", "object_id", "recipient_id", "cycle"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(40))
    recipient_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    cycle: Mapped[str] = mapped_column(String(40))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    channel: Mapped[str] = mapped_column(String(200))
