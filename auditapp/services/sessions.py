"""Server-side sessions: started at sign-in, checked on each request, ended for good.

The session cookie is signed but lives in the browser, so on its own a copy keeps
working after sign-out. Each sign-in therefore gets a row here, and the cookie holds
only a random token whose SHA-256 is the row's id: a request is signed in only while
its row is open, younger than the absolute lifetime and used within the idle timeout
(ASVS 7.3.1-7.3.2, 7.4.1-7.4.2). Sign-out, a password change or reset and
deactivation end the rows. The check is one lookup by primary key; the last-seen
time is written at most once a minute (`needs_touch`), not on every request.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from auditapp.models import LoginSession, User
from auditapp.models.types import utcnow
from auditapp.services import audit

TOUCH_EVERY = timedelta(minutes=1)


@dataclass(frozen=True)
class Limits:
    """How long a session may stay unused (idle) and how long it may live at all."""

    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, idle_minutes: int, absolute_hours: int) -> Limits:
        """The limits from the SESSION_IDLE_MINUTES and SESSION_ABSOLUTE_HOURS settings."""
        return cls(timedelta(minutes=int(idle_minutes)), timedelta(hours=int(absolute_hours)))


def _row_id(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def start(
    session: Session, user: User, *, client: str | None, user_agent: str | None, limits: Limits
) -> str:
    """Open a session for a person who just signed in; returns the token for the cookie.

    Rows past the absolute lifetime are deleted on the way, which keeps the table to
    the sessions of the last few hours (no scheduled job needed)."""
    now = utcnow()
    session.execute(delete(LoginSession).where(LoginSession.created_at < now - limits.absolute))
    token = secrets.token_urlsafe(32)
    session.add(
        LoginSession(
            id=_row_id(token),
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            client=(client or "")[:64] or None,
            user_agent=(user_agent or "")[:200] or None,
        )
    )
    session.flush()
    return token


@dataclass(frozen=True)
class Current:
    """A request's valid session and its person."""

    row_id: str
    user: User
    last_seen_at: datetime

    def needs_touch(self, now: datetime | None = None) -> bool:
        """True when last-seen is over a minute old (then `touch` it, in its own transaction)."""
        return (now or utcnow()) - self.last_seen_at >= TOUCH_EVERY


def current(session: Session, token: str | None, limits: Limits) -> Current | None:
    """The open session this token belongs to, or None when it is unknown, ended, idle
    too long, past its absolute lifetime, or its person is deactivated."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    row_id = _row_id(token)
    # The row's times as plain columns, the person as an entity: one statement.
    found = session.execute(
        select(User, LoginSession.created_at, LoginSession.last_seen_at, LoginSession.ended_at)
        .join(LoginSession, LoginSession.user_id == User.id)
        .where(LoginSession.id == row_id)
    ).first()
    if found is None:
        return None
    user, created_at, last_seen_at, ended_at = found
    now = utcnow()
    if (
        ended_at is not None
        or not user.active
        or now - created_at > limits.absolute
        or now - last_seen_at > limits.idle
    ):
        return None
    return Current(row_id=row_id, user=user, last_seen_at=last_seen_at)


def touch(session: Session, row_id: str) -> None:
    """Record that the session was used now (the idle timeout counts from here)."""
    session.execute(
        update(LoginSession)
        .where(LoginSession.id == row_id, LoginSession.ended_at.is_(None))
        .values(last_seen_at=utcnow())
    )


def end(session: Session, token: str | None, *, actor: User | str, reason: str) -> bool:
    """End one session (sign-out); True when an open one was ended. Recorded."""
    if not token or not isinstance(token, str):
        return False
    ended = session.execute(
        update(LoginSession)
        .where(LoginSession.id == _row_id(token), LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    ).rowcount
    if ended:
        audit.record(
            session,
            actor=actor,
            action="auth.logout",
            object_type="user",
            object_id=actor.id if isinstance(actor, User) else None,
        )
    return bool(ended)


def end_all(session: Session, user: User, *, reason: str) -> int:
    """End every open session of a person (password change or reset, deactivation);
    returns how many. The caller records the action that caused it."""
    return session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    ).rowcount
