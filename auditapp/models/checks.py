"""The audit work: periodic checks of controls, attestations, reviews, findings.

Apart from the catalog: a check refers to a control and records the version of the
control's text that was in force when it was created.
"""

from __future__ import annotations

import enum
import json
from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auditapp.extensions import db
from auditapp.models.catalog import Control
from auditapp.models.org import User
from auditapp.models.types import UTCDateTime, utcnow


class CheckStatus(enum.StrEnum):
    """A check's life cycle; 'overdue' is not stored but derived from the due date."""

    OPEN = "open"
    ATTESTED = "attested"
    ACCEPTED = "accepted"
    RETURNED = "returned"


class Result(enum.StrEnum):
    """What the owner attests."""

    EFFECTIVE = "effective"
    DEFICIENT = "deficient"
    NOT_APPLICABLE = "not_applicable"


class Decision(enum.StrEnum):
    """A reviewer's decision."""

    ACCEPTED = "accepted"
    RETURNED = "returned"


class Risk(enum.StrEnum):
    """A finding's risk rating."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class FindingStatus(enum.StrEnum):
    """A finding's life cycle."""

    OPEN = "open"
    CLOSURE_SUBMITTED = "closure_submitted"
    CLOSED = "closed"


class Check(db.Model):
    """One control checked for one period; exactly one per control and period."""

    __tablename__ = "check_item"
    __table_args__ = (
        UniqueConstraint("control_id", "period_key"),
        Index("ix_check_item_status_due", "status", "due_date"),
        Index("ix_check_item_fy", "fiscal_year", "period_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    control_id: Mapped[int] = mapped_column(ForeignKey("control.id"), index=True)
    period_key: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    fiscal_year: Mapped[int] = mapped_column(Integer)
    frequency: Mapped[str] = mapped_column(String(20))
    # The control's text in force when the check was created.
    control_version: Mapped[int] = mapped_column(Integer)
    control_content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default=CheckStatus.OPEN.value)
    overdue_marked_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    control: Mapped[Control] = relationship(lazy="joined")
    attestations: Mapped[list[Attestation]] = relationship(
        back_populates="check", order_by="Attestation.id", lazy="selectin"
    )
    reviews: Mapped[list[Review]] = relationship(order_by="Review.id", lazy="selectin")

    def is_overdue(self, today: date) -> bool:
        """Not yet attested (or returned) and past its due date."""
        return self.status in (CheckStatus.OPEN, CheckStatus.RETURNED) and self.due_date < today

    def display_status(self, today: date) -> str:
        """The status shown to people: 'overdue' when open past the due date."""
        return "overdue" if self.is_overdue(today) else self.status

    @property
    def current_attestation(self) -> Attestation | None:
        """The attestation in force (the newest)."""
        return self.attestations[-1] if self.attestations else None


class Attestation(db.Model):
    """The owner's signed statement for a check; locked once submitted."""

    __tablename__ = "attestation"
    __table_args__ = (UniqueConstraint("check_id", "sequence"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("check_item.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    attester_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    attester_name: Mapped[str] = mapped_column(String(300))
    result: Mapped[str] = mapped_column(String(20))
    statement: Mapped[str] = mapped_column(Text)
    attested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # [{"id", "sha256", "filename"}] of the evidence attached when it was submitted.
    evidence_json: Mapped[str] = mapped_column(Text, default="[]")
    # Figures recorded with the attestation (e.g. a training completion rate).
    figures_json: Mapped[str | None] = mapped_column(Text)

    check: Mapped[Check] = relationship(back_populates="attestations")
    attester: Mapped[User | None] = relationship()

    @property
    def evidence(self) -> list[dict]:
        return json.loads(self.evidence_json or "[]")

    @property
    def figures(self) -> dict:
        return json.loads(self.figures_json) if self.figures_json else {}


class Review(db.Model):
    """An admin's acceptance or return of an attestation (never by its attester)."""

    __tablename__ = "review"

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("check_item.id"), index=True)
    attestation_id: Mapped[int] = mapped_column(ForeignKey("attestation.id"), unique=True)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reviewer_name: Mapped[str] = mapped_column(String(300))
    decision: Mapped[str] = mapped_column(String(12))
    comment: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Finding(db.Model):
    """A deficiency to fix: a remediation plan with an owner and due date; closing is reviewed."""

    __tablename__ = "finding"
    __table_args__ = (Index("ix_finding_status_due", "status", "due_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int | None] = mapped_column(ForeignKey("check_item.id"), index=True)
    control_id: Mapped[int] = mapped_column(ForeignKey("control.id"), index=True)
    description: Mapped[str] = mapped_column(Text)
    risk: Mapped[str] = mapped_column(String(10))
    remediation_plan: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    due_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=FindingStatus.OPEN.value)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closing_note: Mapped[str | None] = mapped_column(Text)
    closure_submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closure_evidence_json: Mapped[str | None] = mapped_column(Text)
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    review_comment: Mapped[str | None] = mapped_column(Text)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    overdue_marked_on: Mapped[date | None] = mapped_column(Date)
    # Who asked to close: four eyes, they never review that closure (access.py).
    closure_submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    control: Mapped[Control] = relationship(lazy="joined")
    check: Mapped[Check | None] = relationship()
    owner: Mapped[User] = relationship(foreign_keys=[owner_id], lazy="joined")
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id])
    closure_submitted_by: Mapped[User | None] = relationship(foreign_keys=[closure_submitted_by_id])

    def is_overdue(self, today: date) -> bool:
        """Still open past its due date."""
        return self.status == FindingStatus.OPEN and self.due_date < today
