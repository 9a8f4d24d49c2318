"""People imported from HR have no password until a reset (ASVS 6.4: no default passwords)."""

from __future__ import annotations

import io
import re

import pytest
from sqlalchemy import select

from auditapp.extensions import db
from auditapp.models import AuditEvent, User
from auditapp.services import auth
from auditapp.services.user_import import import_users
from tests.conftest import login

CSV = b"employee_id,name,email,roles\r\nE001,Yamada Taro,taro@example.jp,employee\r\n"


@pytest.fixture
def imported(app, users):
    """One person imported from a CSV file (committed), next to the per-role users."""
    with app.app_context():
        result = import_users(db.session, "test", io.BytesIO(CSV))
        assert result.written
        db.session.commit()
    return "taro@example.jp"


def _normalized(response, email: str) -> str:
    text = response.get_data(as_text=True)
    text = re.sub(r'name="csrf_token" value="[^"]+"', 'name="csrf_token"', text)
    return text.replace(email, "X")


# The text of the dummy hash checked for unknown emails: typing it must not sign anyone in.
@pytest.mark.parametrize("password", ["", "not-a-real-password-0000", "any-password-1234"])
def test_imported_person_cannot_sign_in_and_looks_like_a_wrong_password(app, imported, password):
    """ASVS 6.4.1: an imported person's sign-in fails exactly like an unknown email's."""
    attempt = login(app.test_client(), imported, password)
    unknown = login(app.test_client(), "nobody@example.jp", password)

    assert attempt.status_code == unknown.status_code == 401
    assert _normalized(attempt, imported) == _normalized(unknown, "nobody@example.jp")
    with app.app_context():
        failed = db.session.scalars(
            select(AuditEvent.actor_label).where(AuditEvent.action == "auth.login_failed")
        ).all()
        assert failed == [imported, "nobody@example.jp"]
        assert db.session.scalar(select(User.last_login_at).where(User.email == imported)) is None


def test_a_reset_gives_an_imported_person_their_first_password(app, imported):
    """After an admin's reset the person signs in with the one-time password."""
    with app.app_context():
        person = db.session.scalar(select(User).where(User.email == imported))
        password = auth.reset_password(db.session, "test", person)
        db.session.commit()

    response = login(app.test_client(), imported, password)

    assert response.status_code == 302
