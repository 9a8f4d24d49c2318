"""ASVS 7.3-7.4: sessions end on the server: sign-out, timeouts, password changes, deactivation."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from auditapp.extensions import db
from auditapp.models import AuditEvent, LoginSession, User
from auditapp.models.types import utcnow
from tests.conftest import login, post
from tests.factories import PASSWORD


def _copy(app, client):
    """A second browser holding a copy of this client's session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def _rows(app, email: str) -> list[LoginSession]:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        return list(
            db.session.scalars(sa.select(LoginSession).where(LoginSession.user_id == user.id)).all()
        )


def _age(app, email: str, **columns: timedelta) -> None:
    """Move the person's session times into the past (created_at=..., last_seen_at=...)."""
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.email == email))
        db.session.execute(
            sa.update(LoginSession)
            .where(LoginSession.user_id == user.id)
            .values({name: utcnow() - ago for name, ago in columns.items()})
        )
        db.session.commit()


def _signed_out(response) -> bool:
    return response.status_code == 302 and "/login" in response.location


def test_copied_cookie_is_refused_after_logout(app, as_role):
    """7.4.1: a cookie copied before sign-out no longer works after it."""
    client = as_role("employee")
    thief = _copy(app, client)
    assert thief.get("/").status_code == 200  # the copy works while the session is open
    assert post(client, "/logout").status_code == 302
    assert _signed_out(thief.get("/"))
    assert _signed_out(client.get("/"))
    (row,) = _rows(app, "employee@example.jp")
    assert row.ended_at is not None and row.end_reason == "logout"
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(action="auth.logout").count() == 1


def test_cookie_holds_a_token_not_the_row_id(app, as_role):
    """The database keeps only the token's SHA-256: a copy of the table signs nobody in."""
    import hashlib
    import json
    import zlib
    from base64 import urlsafe_b64decode

    client = as_role("employee")
    raw = client.get_cookie("session").value
    payload = raw.lstrip(".").split(".")[0]
    data = urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if raw.startswith("."):
        data = zlib.decompress(data)
    token = json.loads(data)["sid"]
    (row,) = _rows(app, "employee@example.jp")
    assert row.id == hashlib.sha256(token.encode()).hexdigest() != token


def test_idle_timeout_is_enforced_on_the_server(app, as_role):
    """7.3.1: a session unused for longer than SESSION_IDLE_MINUTES is refused."""
    client = as_role("employee")
    _age(app, "employee@example.jp", last_seen_at=timedelta(minutes=29))
    assert client.get("/").status_code == 200
    _age(app, "employee@example.jp", last_seen_at=timedelta(minutes=31))
    assert _signed_out(client.get("/"))


def test_absolute_lifetime_is_enforced_on_the_server(app, as_role):
    """7.3.2: a session older than SESSION_ABSOLUTE_HOURS ends even if used a moment ago."""
    client = as_role("employee")
    _age(app, "employee@example.jp", created_at=timedelta(hours=11, minutes=59))
    assert client.get("/").status_code == 200
    _age(app, "employee@example.jp", created_at=timedelta(hours=12, minutes=1))
    assert _signed_out(client.get("/"))


def test_last_seen_is_written_at_most_once_a_minute(app, as_role):
    """A request within a minute of the last write writes nothing; an older one moves it on."""
    client = as_role("employee")
    (before,) = _rows(app, "employee@example.jp")
    for _ in range(3):
        assert client.get("/").status_code == 200
    (same,) = _rows(app, "employee@example.jp")
    assert same.last_seen_at == before.last_seen_at
    _age(app, "employee@example.jp", last_seen_at=timedelta(minutes=5))
    assert client.get("/").status_code == 200
    (moved,) = _rows(app, "employee@example.jp")
    assert utcnow() - moved.last_seen_at < timedelta(seconds=30)
    # A POST moves it on too (committed with the request on SQLite).
    _age(app, "employee@example.jp", last_seen_at=timedelta(minutes=5))
    assert post(client, "/language", {"lang": "en", "next": "/"}).status_code == 302
    (after_post,) = _rows(app, "employee@example.jp")
    assert utcnow() - after_post.last_seen_at < timedelta(seconds=30)


def test_deactivation_ends_every_session(app, as_role, users):
    """7.4.2: deactivating a person ends all their sessions, on every device."""
    laptop = as_role("employee")
    phone = as_role("employee")
    copy = _copy(app, laptop)
    admin = as_role("admin")
    with app.app_context():
        target = db.session.query(User).filter_by(email=users["employee"]).one().id
    assert post(admin, f"/admin/users/{target}/deactivate").status_code == 302
    assert all(_signed_out(c.get("/")) for c in (laptop, phone, copy))
    rows = _rows(app, users["employee"])
    assert len(rows) == 2 and {r.end_reason for r in rows} == {"deactivated"}
    # Reactivation does not bring the old sessions back.
    assert post(admin, f"/admin/users/{target}/reactivate").status_code == 302
    assert all(_signed_out(c.get("/")) for c in (laptop, phone, copy))


def test_password_change_ends_the_other_sessions(app, as_role, users):
    """7.4.3 (v4 3.3.3): after a password change other sessions end; this one goes on."""
    here = as_role("employee")
    elsewhere = as_role("employee")
    copy = _copy(app, here)
    new = "a-brand-new-passphrase-2026"
    response = post(
        here,
        "/password",
        {"current_password": PASSWORD, "new_password": new, "confirm_password": new},
    )
    assert response.status_code == 302
    assert here.get("/").status_code == 200
    assert _signed_out(elsewhere.get("/"))
    assert _signed_out(copy.get("/"))  # the old cookie of this very browser, too
    reasons = sorted(r.end_reason or "open" for r in _rows(app, users["employee"]))
    assert reasons == ["open", "password_changed", "password_changed"]


def test_admin_reset_ends_the_persons_sessions(app, as_role, users):
    """A password reset by an admin ends every session of that person."""
    manager = as_role("manager")
    admin = as_role("admin")
    with app.app_context():
        target = db.session.query(User).filter_by(email=users["manager"]).one().id
    assert post(admin, f"/admin/users/{target}/reset-password").status_code == 200
    assert _signed_out(manager.get("/"))
    assert {r.end_reason for r in _rows(app, users["manager"])} == {"password_reset"}


def test_a_cookie_without_a_server_session_is_refused(app, users):
    """A signed cookie naming the user but no open session (e.g. made before an upgrade)
    does not sign anyone in."""
    client = app.test_client()
    assert login(client, users["employee"]).status_code == 302
    with client.session_transaction() as sess:
        sess["sid"] = "made-up-token"
    assert _signed_out(client.get("/"))
    with client.session_transaction() as sess:
        sess.pop("sid")
    assert _signed_out(client.get("/"))


def test_old_sessions_are_cleaned_up_at_sign_in(app, as_role, users):
    """Rows past the absolute lifetime are deleted when someone signs in (bounded table)."""
    as_role("employee")
    _age(app, users["employee"], created_at=timedelta(hours=13))
    as_role("manager")
    assert _rows(app, users["employee"]) == []
