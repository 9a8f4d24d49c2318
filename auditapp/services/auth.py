"""Passwords and sign-in: policy, hashing, throttled authentication, changes and resets."""

from __future__ import annotations

import secrets
from datetime import timedelta
from functools import cache
from importlib import resources

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from auditapp.errors import Forbidden, InvalidInput, TooManyRequests
from auditapp.i18n import lazy_text as _l
from auditapp.models import LoginFailure, User
from auditapp.models.types import utcnow
from auditapp.services import audit
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


def _failures_since(session: Session, key: str, window: timedelta) -> int:
    return (
        session.scalar(
            select(func.count()).where(
                LoginFailure.key == key, LoginFailure.at >= utcnow() - window
            )
        )
        or 0
    )


def authenticate(
    session: Session,
    email: str,
    password: str,
    *,
    client: str,
    max_per_account: int,
    max_per_client: int,
    window_minutes: int,
) -> User:
    """Return the user for these credentials, or raise (same message whatever was wrong).

    Failures are counted per account and per client; past the limits every attempt is
    refused with TooManyRequests until the window has passed. The caller commits
    either way, so failures are kept.
    """
    window = timedelta(minutes=window_minutes)
    email_key = "account:" + (email or "").strip().lower()[:254]
    client_key = "client:" + (client or "unknown")[:64]
    if (
        _failures_since(session, email_key, window) >= max_per_account
        or _failures_since(session, client_key, window) >= max_per_client
    ):
        audit.record(
            session,
            actor=email_key[8:] or "anonymous",
            action="auth.login_throttled",
            object_type="user",
            after={"client": client},
        )
        raise TooManyRequests(
            _l(
                "Too many failed sign-ins. Try again in %(minutes)s minutes.",
                minutes=window_minutes,
            )
        )
    user = session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    # A person without a password (imported, not reset yet) is checked against the dummy
    # hash like an unknown email: as slow, and refused even if the dummy's text is typed.
    usable = user.password_hash if user and user.password_hash else None
    valid = check_password_hash(usable or _DUMMY_HASH, password or "") and usable is not None
    if not user or not valid:
        session.execute(delete(LoginFailure).where(LoginFailure.at < utcnow() - window))
        session.add_all([LoginFailure(key=email_key), LoginFailure(key=client_key)])
        audit.record(
            session,
            actor=email_key[8:] or "anonymous",
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
    session.execute(delete(LoginFailure).where(LoginFailure.key == email_key))
    user.last_login_at = utcnow()
    audit.record(session, actor=user, action="auth.login", object_type="user", object_id=user.id)
    return user


def change_password(
    session: Session, user: User, current: str, new: str, *, min_len: int, max_len: int
) -> None:
    """Change one's own password after checking the current one; other sessions end."""
    if not user.password_hash or not check_password_hash(user.password_hash, current or ""):
        raise fail("current_password", _l("is wrong"))
    if new == current:
        raise fail("new_password", _l("must differ from the current password"))
    check_policy(new, min_len=min_len, max_len=max_len, user=user)
    user.password_hash = hash_password(new)
    user.must_change_password = False
    user.session_version += 1
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
    audit.record(
        session, actor=actor, action="user.password_reset", object_type="user", object_id=user.id
    )
    return password
