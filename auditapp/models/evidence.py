"""Evidence items (metadata of content-addressed files) and their links to other objects."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auditapp.extensions import db
from auditapp.models.org import User
from auditapp.models.types import UTCDateTime, utcnow


class EvidenceStatus(enum.StrEnum):
    """Where an evidence item is in its life."""

    ACTIVE = "active"
    WITHDRAWN = "withdrawn"  # hidden from new reports; bytes kept until retention ends
    PURGED = "purged"  # withdrawn and past retention: the bytes are gone


class Evidence(db.Model):
    """One uploaded file as evidence; immutable once stored (a new version supersedes it)."""

    __tablename__ = "evidence"
    __table_args__ = (Index("ix_evidence_lineage", "lineage_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(120))
    filename: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    uploaded_by_label: Mapped[str] = mapped_column(String(300))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    valid_until: Mapped[date | None] = mapped_column(Date, index=True)
    retention_until: Mapped[date] = mapped_column(Date)
    # Versions: every version of one item shares the lineage id (the first version's id).
    lineage_id: Mapped[int | None] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=1)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("evidence.id"), unique=True)
    # Set when a newer version is uploaded; the item stays in the history.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(12), default=EvidenceStatus.ACTIVE.value, index=True)
    withdrawn_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdraw_reason: Mapped[str | None] = mapped_column(Text)
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    uploaded_by: Mapped[User | None] = relationship(foreign_keys=[uploaded_by_id])
    withdrawn_by: Mapped[User | None] = relationship(foreign_keys=[withdrawn_by_id])
    links: Mapped[list[EvidenceLink]] = relationship(
        back_populates="evidence", cascade="all, delete-orphan", lazy="selectin"
    )

    @property
    def is_image(self) -> bool:
        """Images can be previewed inline."""
        return self.media_type in {"image/png", "image/jpeg", "image/gif", "image/webp"}


class EvidenceLink(db.Model):
    """Evidence attached to an object (control, check, finding, completion) by type and id."""

    __tablename__ = "evidence_link"
    __table_args__ = (
        UniqueConstraint("evidence_id", "object_type", "object_id"),
        Index("ix_evidence_link_object", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    evidence_id: Mapped[int] = mapped_column(ForeignKey("evidence.id", ondelete="CASCADE"))
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    evidence: Mapped[Evidence] = relationship(back_populates="links")
