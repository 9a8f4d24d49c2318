"""Passwords and sign-in: policy, hashing, throttled authentication, changes and resets."""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib import resources
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from auditapp.errors import Forbidden, InvalidInput, TooManyRequests
from auditapp.i18n import lazy_text as _l
from auditapp.models import LoginFailure, User
from auditapp.models.types import utcnow
from auditapp.services import audit, sessions
from auditapp.services.inputs import fail

HASH_METHOD = "scrypt"
# Checked when the email is unknown, so a guess takes as long either way (no enumeration).
_DUMMY_HASH = generate_password_hash("not-a-real-password-0000", method=HASH_METHOD)


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of commonly used passwords, lower-cased."""
    body = resources.files("auditapp").joinpath("data/common-passwords.txt").read_text("utf-8")
    return frozenset(
        line.strip().lower() for line in body.splitlines() if line and not line.startswith("#")
    )


def check_policy(password: str, *, min_len: int, max_len: int, user: User | None = None) -> None:
    """Refuse a password too short, too long, common, or equal to the person's own details."""
    if len(password) < min_len:
        raise fail("new_password", _l("must be at least %(n)s characters", n=min_len))
    if len(password) > max_len:
        raise fail("new_password", _l("must be at most %(n)s characters", n=max_len))
    lowered = password.lower()
    personal = {user.email, user.email.split("@")[0], user.employee_id} if user else set()
    if (
        lowered in common_passwords()
        or lowered in {p.lower() for p in personal}
        or (len(set(password)) <= 2)
    ):
        raise fail("new_password", _l("is too common or too easy to guess; choose another"))


def hash_password(password: str) -> str:
    """The stored hash of a password (scrypt)."""
    return generate_password_hash(password, method=HASH_METHOD)


def generate_password() -> str:
    """A random password to show once (first admin, resets)."""
    return secrets.token_urlsafe(12)


@dataclass(frozen=True)
class Throttle:
    """How failed sign-ins slow guessing down without letting a stranger lock a person out
    (SECURITY.md item 3, ASVS 6.3.1). Failures count for the window; then:

    - the (account, client) pair is refused after `max_per_account_client` failures, so
      guessing from one place stops while the person signs in from their own;
    - a client is refused after `max_per_client` failures across accounts (spraying);
    - the account as a whole waits longer after each failure past `delay_after`, from any
      client (1, 2, 4 ... seconds, at most `delay_max_seconds`): a growing wait, not a lock.
    """

    window_minutes: int = 15
    max_per_account_client: int = 5
    max_per_client: int = 20
    delay_after: int = 5
    delay_max_seconds: int = 60

    @classmethod
    def from_settings(cls, cfg: Mapping[str, Any]) -> Throttle:
        """The throttle the LOGIN_* settings describe."""
        return cls(
            window_minutes=int(cfg["LOGIN_FAILURE_WINDOW_MINUTES"]),
            max_per_account_client=int(cfg["LOGIN_MAX_FAILURES_PER_ACCOUNT_CLIENT"]),
            max_per_client=int(cfg["LOGIN_MAX_FAILURES_PER_CLIENT"]),
            delay_after=int(cfg["LOGIN_DELAY_AFTER_FAILURES"]),
            delay_max_seconds=int(cfg["LOGIN_DELAY_MAX_SECONDS"]),
        )

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.window_minutes)

    def delay(self, failures: int) -> timedelta:
        """How long after its last failure an account with this many recent failures waits."""
        if failures < self.delay_after:
            return timedelta(0)
        doubling = min(failures - self.delay_after, 30)
        return timedelta(seconds=min(self.delay_max_seconds, 2**doubling))


def _account_key(email: str | None) -> str:
    return (email or "").strip().lower()[:254]


def _refusal(session: Session, account: str, client: str, throttle: Throttle):
    """The TooManyRequests for this attempt, or None when it may go ahead."""
    now = utcnow()
    since = now - throttle.window
    total, from_here, last = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((LoginFailure.client == client, 1), else_=0)), 0),
            func.max(LoginFailure.at),
        ).where(LoginFailure.account == account, LoginFailure.at >= since)
    ).one()
    if from_here >= throttle.max_per_account_client or (
        session.scalar(
            select(func.count()).where(LoginFailure.client == client, LoginFailure.at >= since)
        )
        >= throttle.max_per_client
    ):
        return TooManyRequests(
            _l(
                "Too many failed sign-ins. Try again in %(minutes)s minutes.",
                minutes=throttle.window_minutes,
            )
        )
    if last is not None:
        wait = last + throttle.delay(total) - now
        if wait > timedelta(0):
            return TooManyRequests(
                _l(
                    "Too many failed sign-ins. Try again in %(seconds)s seconds.",
                    seconds=math.ceil(wait.total_seconds()),
                )
            )
    return None


def authenticate(
    session: Session, email: str, password: str, *, client: str, throttle: Throttle
) -> User:
    """Return the user for these credentials, or raise (same message whatever was wrong).

    Throttled attempts (see Throttle) are refused with TooManyRequests before the password
    is looked at. The caller commits either way, so failures are kept.
    """
    account = _account_key(email)
    client = (client or "unknown")[:64]
    refusal = _refusal(session, account, client, throttle)
    if refusal is not None:
        audit.record(
            session,
            actor=account or "anonymous",
            action="auth.login_throttled",
            object_type="user",
            after={"client": client},
        )
        raise refusal
    user = session.scalar(select(User).where(User.email == account))
    # A person without a password (imported, not reset yet) is checked against the dummy
    # hash like an unknown email: as slow, and refused even if the dummy's text is typed.
    usable = user.password_hash if user and user.password_hash else None
    valid = check_password_hash(usable or _DUMMY_HASH, password or "") and usable is not None
    if not user or not valid:
        session.execute(delete(LoginFailure).where(LoginFailure.at < utcnow() - throttle.window))
        session.add(LoginFailure(account=account, client=client))
        audit.record(
            session,
            actor=account or "anonymous",
            action="auth.login_failed",
            object_type="user",
            object_id=user.id if user else None,
            after={"client": client},
        )
        raise InvalidInput(_l("Invalid email or password."))
    if not user.active:
        audit.record(
            session,
            actor=user,
            action="auth.login_refused_inactive",
            object_type="user",
            object_id=user.id,
        )
        raise Forbidden(_l("This account has been deactivated. Ask your administrator."))
    # This client's own mistakes are forgiven; failures from elsewhere keep counting.
    session.execute(
        delete(LoginFailure).where(LoginFailure.account == account, LoginFailure.client == client)
    )
    user.last_login_at = utcnow()
    audit.record(session, actor=user, action="auth.login", object_type="user", object_id=user.id)
    return user


def recent_failures(session: Session, user: User, throttle: Throttle) -> int:
    """Failed sign-ins for this person's account within the throttle's window."""
    return (
        session.scalar(
            select(func.count()).where(
                LoginFailure.account == _account_key(user.email),
                LoginFailure.at >= utcnow() - throttle.window,
            )
        )
        or 0
    )


def unlock(session: Session, actor: User | str, user: User) -> int:
    """Forget a person's failed sign-ins (from every client), so nothing holds them back;
    returns how many were cleared. For another admin or the command line: it does not
    need the locked person. Recorded."""
    cleared = session.execute(
        delete(LoginFailure).where(LoginFailure.account == _account_key(user.email))
    ).rowcount
    audit.record(
        session,
        actor=actor,
        action="user.unlock",
        object_type="user",
        object_id=user.id,
        after={"failures_cleared": cleared},
    )
    return cleared


def change_password(
    session: Session, user: User, current: str, new: str, *, min_len: int, max_len: int
) -> None:
    """Change one's own password after checking the current one; every session ends (the
    caller starts a new one for the person at the keyboard)."""
    if not user.password_hash or not check_password_hash(user.password_hash, current or ""):
        raise fail("current_password", _l("is wrong"))
    if new == current:
        raise fail("new_password", _l("must differ from the current password"))
    check_policy(new, min_len=min_len, max_len=max_len, user=user)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.session_version += 1
    sessions.end_all(session, user, reason="password_changed")
    audit.record(
        session, actor=user, action="user.password_changed", object_type="user", object_id=user.id
    )


def reset_password(session: Session, actor: User | str, user: User) -> str:
    """Give the user a new random password, to be changed at next sign-in; returns it.

    This is also how imported people, who have no password, get their first one."""
    password = generate_password()
    user.password_hash = hash_password(password)
    user.must_change_password = True
    user.session_version += 1
    sessions.end_all(session, user, reason="password_reset")
    audit.record(
        session, actor=actor, action="user.password_reset", object_type="user", object_id=user.id
    )
    return password
