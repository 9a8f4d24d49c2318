"""ASVS 6.3.1 (v4 2.2.1): guessing is slowed without letting a stranger lock a person out."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import sqlalchemy as sa

from auditapp.extensions import db
from auditapp.models import AuditEvent, LoginFailure, User
from auditapp.models.types import utcnow
from auditapp.services import auth
from tests.conftest import login, post

WRONG = "wrong-password-123"


def _from(app, address: str):
    """A browser at this client address."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _backdate(app, seconds: int) -> None:
    """Move every recorded failure this many seconds into the past."""
    with app.app_context():
        for failure in db.session.scalars(sa.select(LoginFailure)):
            failure.at -= timedelta(seconds=seconds)
        db.session.commit()


def _failures(app, email: str, clients: list[str]) -> None:
    """Record one failed sign-in for this account from each client, as if just now."""
    with app.app_context():
        db.session.add_all(LoginFailure(account=email, client=c, at=utcnow()) for c in clients)
        db.session.commit()


def _events(app, action: str) -> int:
    with app.app_context():
        return db.session.query(AuditEvent).filter_by(action=action).count()


def test_guessing_from_one_client_is_refused_for_that_pair(app, users):
    """After 5 failures from one client, that client is refused even with the right password."""
    attacker = _from(app, "203.0.113.9")
    for _ in range(5):
        assert login(attacker, users["admin"], WRONG).status_code == 401
    _backdate(app, 120)  # past any account-wide delay: only the pair limit is left
    response = login(attacker, users["admin"])
    assert response.status_code == 429
    assert "15" in response.get_data(as_text=True)
    assert _events(app, "auth.login_throttled") == 1


def test_a_stranger_cannot_lock_the_admin_out(app, users):
    """The reported case: 5 wrong passwords from elsewhere; the admin still signs in from
    their own machine once the short delay has passed (no 15-minute lock)."""
    stranger = _from(app, "203.0.113.9")
    for _ in range(5):
        login(stranger, users["admin"], WRONG)
    _backdate(app, 2)
    assert login(_from(app, "192.0.2.10"), users["admin"]).status_code == 302


def test_the_account_waits_longer_after_each_failure(app, users):
    """Failures from many clients make the account wait 1, 2, 4 ... seconds (capped), not lock."""
    # Eight clients, one guess each (spread out, as a botnet would, to dodge the pair limit).
    _failures(app, users["admin"], [f"198.51.100.{i}" for i in range(8)])
    # 8 failures, 3 past the threshold: a wait of 2**3 = 8 seconds from the last one.
    owner = _from(app, "192.0.2.10")
    response = login(owner, users["admin"])
    assert response.status_code == 429
    waits = re.findall(r"(\d+) ?(?:seconds|秒)", response.get_data(as_text=True))
    assert len(waits) == 1 and 5 <= int(waits[0]) <= 8, waits  # 8 s less the time taken
    _backdate(app, 9)
    assert login(owner, users["admin"]).status_code == 302


def test_wait_grows_then_stops_growing():
    """The delay doubles per failure past the threshold and never exceeds the maximum."""
    throttle = auth.Throttle(delay_after=5, delay_max_seconds=60)
    waits = [throttle.delay(n).total_seconds() for n in range(4, 14)]
    assert waits == [0, 1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert throttle.delay(10**6) == timedelta(seconds=60)


def test_client_guessing_across_accounts_is_refused(make_app, users):
    """Spraying one password over many accounts from one client is refused too."""
    app = make_app(LOGIN_MAX_FAILURES_PER_CLIENT=3)
    client = _from(app, "203.0.113.9")
    for i in range(3):
        login(client, f"guess{i}@example.jp", WRONG)
    assert login(client, "auditor@example.jp").status_code == 429
    assert login(_from(app, "192.0.2.10"), "auditor@example.jp").status_code == 302


def test_unknown_and_known_accounts_are_throttled_alike(app, users):
    """Throttling does not reveal which emails exist: the same status and page either way."""
    for email in ("nobody@example.jp", users["employee"]):
        client = _from(app, "203.0.113.9")
        for _ in range(5):
            assert login(client, email, WRONG).status_code == 401
        _backdate(app, 120)
        assert login(client, email, WRONG).status_code == 429


def test_success_forgives_only_this_clients_failures(app, users):
    """Signing in clears the failures made from this client; those from elsewhere still count."""
    login(_from(app, "203.0.113.9"), users["admin"], WRONG)
    owner = _from(app, "192.0.2.10")
    login(owner, users["admin"], WRONG)
    _backdate(app, 2)
    assert login(owner, users["admin"]).status_code == 302
    with app.app_context():
        left = db.session.scalars(sa.select(LoginFailure.client)).all()
    assert left == ["203.0.113.9"]


def test_another_admin_unlocks_from_the_users_page(app, as_role, users):
    """An admin sees the failures on the person's page and clears them (an audited POST)."""
    attacker = _from(app, "203.0.113.9")
    for _ in range(5):
        login(attacker, users["manager"], WRONG)
    _backdate(app, 120)
    assert login(attacker, users["manager"]).status_code == 429
    admin = as_role("admin")
    with app.app_context():
        target = db.session.scalar(sa.select(User.id).where(User.email == users["manager"]))
    page = admin.get(f"/admin/users/{target}").get_data(as_text=True)
    assert f"/admin/users/{target}/unlock" in page and ">5<" in page
    response = post(admin, f"/admin/users/{target}/unlock")
    assert response.status_code == 302
    assert login(attacker, users["manager"]).status_code == 302
    with app.app_context():
        event = db.session.query(AuditEvent).filter_by(action="user.unlock").one()
        assert event.object_id == str(target) and "admin@example.jp" in event.actor_label
        assert json.loads(event.after_json) == {"failures_cleared": 5}


def test_unlock_service_for_the_command_line(app, users):
    """auth.unlock clears a person's failures from every client without them (for the CLI)."""
    _failures(app, users["admin"], ["203.0.113.9"] * 5 + ["198.51.100.7"] * 5)
    with app.app_context():
        admin = db.session.scalar(sa.select(User).where(User.email == users["admin"]))
        assert auth.recent_failures(db.session, admin, auth.Throttle()) == 10
        assert auth.unlock(db.session, "cli", admin) == 10
        db.session.commit()
        assert auth.recent_failures(db.session, admin, auth.Throttle()) == 0
        assert db.session.query(AuditEvent).filter_by(action="user.unlock").count() == 1
    assert login(_from(app, "203.0.113.9"), users["admin"]).status_code == 302
