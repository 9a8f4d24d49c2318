"""A manager reminds their department's overdue people, at most once a day."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from auditapp.extensions import db
from auditapp.models import SentReminder
from auditapp.services import training
from auditapp.services import users as users_service
from tests.conftest import post
from tests.factories import make_department, make_user


def test_manager_sends_department_reminders_once(app, as_role, users):
    """The button sends one e-mail per overdue person and course, and not twice a day."""
    with app.app_context():
        dept = make_department(db.session, code="OPS", name="運用部")
        manager = users_service.by_email(db.session, "manager@example.jp")
        manager.department = dept
        make_user(
            db.session,
            roles=["employee"],
            department=dept,
            email="late@example.jp",
            hired_on="2020-04-01",
        )
        training.create_course(
            db.session,
            "test",
            {
                "code": "PI",
                "title_ja": "研修",
                "title_en": "Training",
                "recurrence_months": 12,
                "audience": "all",
            },
            date(2024, 1, 1),
        )
        db.session.commit()
    client = as_role("manager")
    assert post(client, "/training/department/remind").status_code == 302
    outbox = Path(app.instance_path) / "outbox"
    first = sorted(outbox.glob("*.eml"))
    assert first  # the manager and the late employee are both overdue
    post(client, "/training/department/remind")
    assert sorted(outbox.glob("*.eml")) == first
    with app.app_context():
        assert db.session.query(SentReminder).count() == len(first)
