"""Training and pledges: courses, who must take them, completions, exemptions."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auditapp.extensions import db
from auditapp.models.org import User
from auditapp.models.types import UTCDateTime, utcnow


class CourseKind(enum.StrEnum):
    """A training (研修) or an acknowledgement such as the confidentiality pledge (誓約)."""

    TRAINING = "training"
    ACKNOWLEDGEMENT = "acknowledgement"


class TrainingStatus(enum.StrEnum):
    """A person's standing for a course they must take."""

    COMPLETE = "complete"
    DUE_SOON = "due_soon"
    OVERDUE = "overdue"
    NOT_STARTED = "not_started"
    EXEMPT = "exempt"


class Course(db.Model):
    """A course people must take, once or every N months."""

    __tablename__ = "course"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    title_ja: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default=CourseKind.TRAINING.value)
    description: Mapped[str | None] = mapped_column(Text)
    content_url: Mapped[str | None] = mapped_column(String(500))
    # For acknowledgements: the text people agree to.
    ack_text: Mapped[str | None] = mapped_column(Text)
    audience_all: Mapped[bool] = mapped_column(Boolean, default=True)
    recurrence_months: Mapped[int] = mapped_column(Integer, default=12)  # 0 = once
    new_hire_grace_days: Mapped[int] = mapped_column(Integer, default=30)
    due_soon_days: Mapped[int] = mapped_column(Integer, default=30)
    certificate_required: Mapped[bool] = mapped_column(Boolean, default=False)
    score_required: Mapped[bool] = mapped_column(Boolean, default=False)
    pass_mark: Mapped[int | None] = mapped_column(Integer)
    # Controls whose checks show this course's completion rate (e.g. "HUM-01 HUM-02").
    control_codes: Mapped[str | None] = mapped_column(String(200))
    # People hired before this day are due `new_hire_grace_days` after it.
    effective_from: Mapped[date] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    department_rows: Mapped[list[CourseDepartment]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )
    role_rows: Mapped[list[CourseRole]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )

    def title(self, lang: str) -> str:
        """The title in a language (Japanese unless English is asked for)."""
        return self.title_en if lang == "en" else self.title_ja

    @property
    def controls(self) -> list[str]:
        return (self.control_codes or "").split()


class CourseDepartment(db.Model):
    """A department whose members must take a course."""

    __tablename__ = "course_department"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("course.id", ondelete="CASCADE"), primary_key=True
    )
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), primary_key=True)


class CourseRole(db.Model):
    """A role whose holders must take a course."""

    __tablename__ = "course_role"

    course_id: Mapped[int] = mapped_column(
        ForeignKey("course.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20), primary_key=True)


class Completion(db.Model):
    """A person completed a course (or agreed to a pledge) on a day."""

    __tablename__ = "completion"
    __table_args__ = (
        UniqueConstraint("course_id", "user_id", "completed_on"),
        Index("ix_completion_user_course", "user_id", "course_id", "valid_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    completed_on: Mapped[date] = mapped_column(Date)
    score: Mapped[int | None] = mapped_column(Integer)
    passed: Mapped[bool] = mapped_column(Boolean, default=True)
    # completed_on + the course's recurrence; NULL when the course is taken once.
    valid_until: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(20))  # self, manager, import
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    recorded_by_label: Mapped[str] = mapped_column(String(300))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    agreed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    course: Mapped[Course] = relationship(lazy="joined")
    user: Mapped[User] = relationship(foreign_keys=[user_id])


class Exemption(db.Model):
    """A person does not need to take a course, with the reason and who decided."""

    __tablename__ = "exemption"
    __table_args__ = (UniqueConstraint("course_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    granted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    granted_by_label: Mapped[str] = mapped_column(String(300))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
