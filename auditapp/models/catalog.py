"""The control catalog as synced from controls/, and the organization's settings for it.

The content (what should be true) comes from the catalog files and is replaced only by
`catalog sync`; each content change is kept as a ControlVersion so a check can say
which text was in force. Ownership, frequency override and applicability are the
organization's decisions about a control and are never touched by a sync.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from auditapp.extensions import db
from auditapp.models.org import User
from auditapp.models.types import UTCDateTime, utcnow


class ControlStatus(enum.StrEnum):
    """Whether a control is in the current catalog files."""

    ACTIVE = "active"
    RETIRED = "retired"


class Profile(enum.StrEnum):
    """The organization's profile: decides which method text applies."""

    STANDARD = "standard"
    SME = "sme"


@dataclass(frozen=True)
class CategoryDef:
    """One of the eight categories of the catalog, tied to a clause of the privacy policy."""

    id: str
    order: int
    policy_clause: str
    title_ja: str
    title_en: str

    @property
    def file_name(self) -> str:
        """The category file that holds this category's controls, e.g. 01-basic-policy.yaml."""
        return f"{self.order:02d}-{self.id.replace('_', '-')}.yaml"


# The values `Control.category` may take, in the policy's order (an invariant of Control).
CATEGORIES: list[CategoryDef] = [
    CategoryDef("basic_policy", 1, "第2条の2(1)", "基本方針の策定", "Basic policy"),
    CategoryDef(
        "handling_rules",
        2,
        "第2条の2(2)",
        "個人データの取扱いに係る規律の整備",
        "Rules for handling personal data",
    ),
    CategoryDef(
        "organizational", 3, "第2条の2(3)", "組織的安全管理措置", "Organizational safeguards"
    ),
    CategoryDef("human", 4, "第2条の2(4)", "人的安全管理措置", "Human safeguards"),
    CategoryDef("physical", 5, "第2条の2(5)", "物理的安全管理措置", "Physical safeguards"),
    CategoryDef("technical", 6, "第2条の2(6)", "技術的安全管理措置", "Technical safeguards"),
    CategoryDef(
        "external_environment",
        7,
        "第2条の2(7)",
        "外的環境の把握",
        "Understanding the external environment",
    ),
    CategoryDef(
        "related_duties", 8, "第3条・第4条・第7条", "関連する継続的義務", "Related recurring duties"
    ),
]


class Control(db.Model):
    """One control of the catalog (its current content) and the organization's settings."""

    __tablename__ = "control"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    category: Mapped[str] = mapped_column(String(40), index=True)  # one of CATEGORIES
    position: Mapped[int] = mapped_column(Integer, default=0)
    title_ja: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    frequency: Mapped[str] = mapped_column(String(20))
    evidence_required: Mapped[bool] = mapped_column(Boolean, default=True)
    # The whole control as canonical JSON (the catalog file's fields), and its hash.
    content_json: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    source_file: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), default=ControlStatus.ACTIVE.value, index=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    # The organization's decisions.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), index=True)
    frequency_override: Mapped[str | None] = mapped_column(String(20))
    applicable: Mapped[bool] = mapped_column(Boolean, default=True)
    na_justification: Mapped[str | None] = mapped_column(Text)
    na_decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    na_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Checks are generated for periods ending on or after this day (set when first owned).
    checks_from: Mapped[date | None] = mapped_column(Date)

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id], lazy="joined")
    na_decided_by: Mapped[User | None] = relationship(foreign_keys=[na_decided_by_id])

    @property
    def content(self) -> dict:
        """The control's content as in the catalog file."""
        return json.loads(self.content_json)

    @property
    def effective_frequency(self) -> str:
        """The frequency in force: the organization's override, else the catalog's."""
        return self.frequency_override or self.frequency

    @property
    def active(self) -> bool:
        return self.status == ControlStatus.ACTIVE.value

    def title(self, lang: str) -> str:
        """The title in a language (Japanese unless English is asked for)."""
        return self.title_en if lang == "en" else self.title_ja


class ControlVersion(db.Model):
    """The content of a control as it was from one sync to the next (history)."""

    __tablename__ = "control_version"
    __table_args__ = (UniqueConstraint("control_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    control_id: Mapped[int] = mapped_column(ForeignKey("control.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    content_json: Mapped[str] = mapped_column(Text)
    catalog_version: Mapped[str] = mapped_column(String(64))
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrgSetting(db.Model):
    """An organization-wide setting (profile, catalog version in force) as key and value."""

    __tablename__ = "org_setting"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
