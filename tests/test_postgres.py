"""PostgreSQL-only behaviour: the advisory lock lets exactly one scheduler run jobs."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from auditapp import scheduler
from auditapp.extensions import db
from auditapp.models import Check, JobRun
from auditapp.services import catalog
from tests.factories import make_user, own_control

pytestmark = pytest.mark.postgres


def test_two_schedulers_one_runs_jobs(make_app):
    """Of two schedulers started against one database, one holds the lock; the other stands
    by and runs nothing, and nothing is created twice."""
    app = make_app()
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        owner = make_user(db.session, roles=["manager"])
        own_control(db.session, "TEC-04", owner, date(2026, 4, 1))
        db.session.commit()
    first = scheduler.Runner(app, kind="first")
    second = scheduler.Runner(app, kind="second")
    try:
        assert first.keep_lock() is True
        assert second.keep_lock() is False
        assert first.tick(date(2026, 11, 27))
        assert second.tick(date(2026, 11, 27)) == []
        with app.app_context():
            runs = db.session.scalar(select(func.count()).select_from(JobRun))
            created = db.session.scalar(select(func.count()).select_from(Check))
        assert runs == len(scheduler.JOBS) and created == 9  # FY2026-M01 .. M09
        first.stop()
        assert second.keep_lock() is True  # the standby takes over when the first stops
    finally:
        first.stop()
        second.stop()
