"""Sign-in, throttling, sessions and passwords (ASVS 6.x and 7.x)."""

from __future__ import annotations

import re

from auditapp.extensions import db
from auditapp.models import AuditEvent, User
from tests.conftest import login, post
from tests.factories import PASSWORD


def _events(app, action: str) -> list[AuditEvent]:
    with app.app_context():
        return db.session.query(AuditEvent).filter_by(action=action).all()


def test_login_success_records_event(app, client, users):
    """A right password signs in, redirects home and is recorded in the audit trail."""
    response = login(client, users["employee"])
    assert response.status_code == 302 and response.location == "/"
    assert client.get("/").status_code == 200
    assert len(_events(app, "auth.login")) == 1


def test_wrong_password_and_unknown_user_look_the_same(app, client, users):
    """Wrong password and unknown email give the same 401 page (no user enumeration)."""
    wrong = login(client, users["employee"], "not-the-password-at-all")
    unknown = login(client, "nobody@example.jp", "not-the-password-at-all")
    assert wrong.status_code == unknown.status_code == 401
    text_wrong = wrong.get_data(as_text=True)
    assert (
        "Invalid email or password" in text_wrong or "メールアドレスまたはパスワード" in text_wrong
    )

    # The pages may differ only in the typed email and the (time-stamped) CSRF token.
    def normalized(text: str, email: str) -> str:
        text = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token"', text)
        return text.replace(email, "X")

    assert normalized(text_wrong, users["employee"]) == normalized(
        unknown.get_data(as_text=True), "nobody@example.jp"
    )
    assert len(_events(app, "auth.login_failed")) == 2


def test_login_keeps_the_typed_email(client, users):
    """After a failed sign-in the email field keeps what was typed."""
    response = login(client, users["employee"], "wrong-password-123")
    assert f'value="{users["employee"]}"' in response.get_data(as_text=True)


def test_deactivated_user_cannot_log_in(app, client, users):
    """A deactivated person is refused with a clear message and not signed in."""
    with app.app_context():
        db.session.query(User).filter_by(email=users["employee"]).one().active = False
        db.session.commit()
    response = login(client, users["employee"])
    assert response.status_code == 401
    body = response.get_data(as_text=True)
    assert "deactivated" in body or "無効" in body
    assert client.get("/").status_code == 302


def test_deactivation_ends_existing_sessions(app, as_role, users):
    """ASVS 7.4.2: when an admin deactivates someone, their open session stops working."""
    employee = as_role("employee")
    assert employee.get("/").status_code == 200
    admin = as_role("admin")
    with app.app_context():
        target = db.session.query(User).filter_by(email=users["employee"]).one().id
    assert post(admin, f"/admin/users/{target}/deactivate").status_code == 302
    response = employee.get("/")
    assert response.status_code == 302 and "/login" in response.location


def test_logout_clears_the_session(as_role):
    """After signing out, protected pages redirect to the login page again."""
    client = as_role("employee")
    assert post(client, "/logout").status_code == 302
    assert "/login" in client.get("/").location


def test_session_cookie_flags(client, users):
    """ASVS 7.3: the session cookie is HttpOnly and SameSite=Lax."""
    response = login(client, users["employee"])
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_change_password(app, as_role, users, client):
    """Changing one's password needs the current one; the new one works afterwards."""
    signed_in = as_role("employee")
    new = "a-brand-new-passphrase-2026"
    response = post(
        signed_in,
        "/password",
        {"current_password": PASSWORD, "new_password": new, "confirm_password": new},
    )
    assert response.status_code == 302
    assert signed_in.get("/").status_code == 200  # this session continues
    assert login(client, users["employee"], PASSWORD).status_code == 401
    assert login(client, users["employee"], new).status_code == 302
    assert len(_events(app, "user.password_changed")) == 1


def test_password_policy(as_role):
    """ASVS 6.2: short, common and mismatched passwords are refused with a reason."""
    client = as_role("employee")
    cases = {
        "short-pw": "12",
        "password1234": "common",
        "aaaaaaaaaaaaaaaa": "common",
    }
    for new, _reason in cases.items():
        response = post(
            client,
            "/password",
            {"current_password": PASSWORD, "new_password": new, "confirm_password": new},
        )
        assert response.status_code == 400, new
    response = post(
        client,
        "/password",
        {
            "current_password": "wrong-current-password",
            "new_password": "x" * 8 + "-long-enough",
            "confirm_password": "x" * 8 + "-long-enough",
        },
    )
    assert response.status_code == 400
    response = post(
        client,
        "/password",
        {
            "current_password": PASSWORD,
            "new_password": "one-long-passphrase",
            "confirm_password": "another-long-passphrase",
        },
    )
    assert response.status_code == 400
    assert PASSWORD != "x" * 65  # 64+ characters are accepted:
    long = "long passphrase " * 6
    response = post(
        client,
        "/password",
        {"current_password": PASSWORD, "new_password": long, "confirm_password": long},
    )
    assert response.status_code == 302


def test_admin_reset_forces_change_at_next_login(app, as_role, users, client):
    """An admin reset shows a one-time password; the person must change it at next sign-in."""
    admin = as_role("admin")
    with app.app_context():
        target = db.session.query(User).filter_by(email=users["manager"]).one().id
    response = post(admin, f"/admin/users/{target}/reset-password")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    one_time = html.split('id="one-time-password">')[1].split("<")[0]
    assert login(client, users["manager"], PASSWORD).status_code == 401
    response = login(client, users["manager"], one_time)
    assert response.location.endswith("/password")
    assert client.get("/admin/users").location.endswith("/password")
    new = "my-own-passphrase-2026"
    response = post(
        client,
        "/password",
        {"current_password": one_time, "new_password": new, "confirm_password": new},
        token_from="/password",
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200


def test_open_redirect_is_refused(client, users):
    """The ?next= target after sign-in is only ever a local path."""
    from tests.conftest import csrf_token

    token = csrf_token(client)
    response = client.post(
        "/login?next=//evil.example/x",
        data={"email": users["employee"], "password": PASSWORD, "csrf_token": token},
    )
    assert response.location == "/"
