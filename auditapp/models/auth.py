"""Signing in: the server-side record of each session, and failed sign-ins for throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from auditapp.extensions import db
from auditapp.models.types import UTCDateTime, utcnow


class LoginSession(db.Model):
    """One signed-in session. The cookie carries a random token; the id is its SHA-256, so
    the table alone does not let anyone sign in. Ended sessions keep why and when."""

    __tablename__ = "login_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    client: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(200))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # logout, password_changed, password_reset, deactivated
    end_reason: Mapped[str | None] = mapped_column(String(20))


class LoginFailure(db.Model):
    """A failed sign-in: counted per account, per client and per (account, client) pair.
    The account is what was typed (lower-cased), whether or not such a person exists."""

    __tablename__ = "login_failure"
    __table_args__ = (
        Index("ix_login_failure_account_at", "account", "at"),
        Index("ix_login_failure_client_at", "client", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Column order as the migrations leave the table (0009 added account and client).
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    account: Mapped[str] = mapped_column(String(254))
    client: Mapped[str] = mapped_column(String(64))
