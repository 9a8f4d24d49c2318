"""Helpers the command-line tests share: run a command, read the database back."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from auditapp.cli import cli
from auditapp.extensions import db
from auditapp.models import AuditEvent, User
from auditapp.services import auth

LIMITS = {"throttle": auth.Throttle()}


def invoke(runner, *args: str):
    """Run `auditapp ARGS...` against the test app."""
    return runner.invoke(cli, list(args))


def counts(app) -> tuple[int, int]:
    """(people, audit events) in the database, read in a fresh session."""
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(User)),
            db.session.scalar(select(func.count()).select_from(AuditEvent)),
        )


def actions(app) -> list[str]:
    """The audit trail's actions, oldest first."""
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def last_event(app, action: str) -> dict:
    """The newest audit event with this action, as plain data."""
    with app.app_context():
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id.desc())
        )
        assert event is not None, f"no {action} event"
        return {
            "actor": event.actor_label,
            "object_id": event.object_id,
            "client_addr": event.client_addr,
            "before": json.loads(event.before_json) if event.before_json else None,
            "after": json.loads(event.after_json) if event.after_json else None,
        }


def person(app, email: str) -> dict:
    """A person's stored details, read in a fresh session."""
    with app.app_context():
        user = db.session.scalar(select(User).where(User.email == email))
        assert user is not None, f"no user {email}"
        return {
            "employee_id": user.employee_id,
            "name": user.name,
            "department": user.department.code if user.department else None,
            "roles": {r.value for r in user.roles},
            "active": user.active,
            "hired_on": user.hired_on.isoformat() if user.hired_on else None,
            "must_change_password": user.must_change_password,
        }


def sign_in(app, email: str, password: str):
    """Authenticate as the web login does; returns the user's email or raises."""
    with app.app_context():
        try:
            user = auth.authenticate(db.session, email, password, client="test", **LIMITS)
            return user.email
        finally:
            db.session.commit()
