"""The scheduled jobs: `auditapp tick`, catch-up, the lock, reminders sent exactly once."""

from __future__ import annotations

import socket
import threading
import time
from datetime import date

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from auditapp import scheduler
from auditapp.extensions import db
from auditapp.models import Check, JobRun, SentReminder
from auditapp.services import catalog
from tests.factories import make_user, own_control


@pytest.fixture
def owned(app):
    """The catalog synced; TEC-04 (monthly) and ORG-03 (quarterly) owned since April 2026."""
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        owner = make_user(db.session, roles=["manager"], email="owner@example.jp", name="担当 一郎")
        owner.language = "ja"
        for code in ("TEC-04", "ORG-03"):
            own_control(db.session, code, owner, date(2026, 4, 1))
        db.session.commit()


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def test_tick_is_idempotent(app, runner, owned):
    """A second tick for the same day creates, marks and sends nothing more."""
    first = runner.invoke(args=["tick", "--today", "2026-11-27"])
    assert first.exit_code == 0, first.output
    assert "ok   materialize_checks: 13 checks created" in first.output
    checks_after, sent_after = _count(app, Check), _count(app, SentReminder)
    assert sent_after > 0
    second = runner.invoke(args=["tick", "--today", "2026-11-27"])
    assert "0 checks created" in second.output and "0 reminders sent" in second.output
    assert (_count(app, Check), _count(app, SentReminder)) == (checks_after, sent_after)
    with app.app_context():
        assert db.session.query(JobRun).filter_by(ok=True).count() == 2 * len(scheduler.JOBS)


def test_skipped_days_are_caught_up(app, runner, owned):
    """Ticking a later day after a gap creates the periods that began meanwhile."""
    runner.invoke(args=["tick", "--today", "2026-05-10"])
    before = _count(app, Check)
    runner.invoke(args=["tick", "--today", "2026-11-27"])
    with app.app_context():
        keys = {c.period_key for c in db.session.scalars(select(Check))}
    assert _count(app, Check) > before
    assert {"FY2026-M05", "FY2026-M06", "FY2026-M07", "FY2026-M08", "FY2026-Q3"} <= keys


def test_impossible_today_is_refused(runner):
    """--today 2026-02-30 exits 2 with the reason."""
    result = runner.invoke(args=["tick", "--today", "2026-02-30"])
    assert result.exit_code == 2 and "not a real date" in result.output


def test_tick_refused_while_another_holds_the_lock(app, runner, owned):
    """Only one scheduler runs jobs: a tick while another process holds the lease is refused."""
    with app.app_context():
        assert scheduler.acquire_lease("scheduler:other-host:1", seconds=60)
    result = runner.invoke(args=["tick", "--today", "2026-11-27"])
    assert result.exit_code == 1 and "held by scheduler:other-host:1" in result.output
    assert _count(app, Check) == 0
    with app.app_context():
        scheduler.release_lease("scheduler:other-host:1")
    assert runner.invoke(args=["tick", "--today", "2026-11-27"]).exit_code == 0


def test_lease_expires(app):
    """A lease not renewed in time can be taken over by another scheduler."""
    with app.app_context():
        assert scheduler.acquire_lease("a", seconds=1)
        assert not scheduler.acquire_lease("b", seconds=1)
        time.sleep(1.1)
        assert scheduler.acquire_lease("b", seconds=60)
        assert scheduler.current_holder(db.session).holder == "b"


def _die(app, runner_: scheduler.Runner) -> None:
    """The holder's process is gone: its database session lock with it, its lease lapsed."""
    from datetime import timedelta

    from auditapp.models import SchedulerLock
    from auditapp.models.types import utcnow

    if runner_.pg_lock is not None:
        runner_.pg_lock.release()
    with app.app_context():
        lease = db.session.get(SchedulerLock, scheduler.LOCK_NAME)
        lease.lease_until = utcnow() - timedelta(seconds=1)
        db.session.commit()


def _runs_today(app) -> set[str]:
    with app.app_context():
        today = scheduler.today_in(app)
        return set(db.session.scalars(select(JobRun.job_id).where(JobRun.run_for == today)))


def test_standby_taking_over_after_a_missed_daily_run_catches_up_at_once(make_app):
    """The holder dies just before the daily run: the standby that takes the lock runs
    today's jobs at once instead of waiting for tomorrow."""
    app = make_app(SCHEDULER_DAILY_AT="00:00")
    first, standby = scheduler.Runner(app, kind="first"), scheduler.Runner(app, kind="standby")
    assert first.keep_lock()  # held since before today's run time (its run is next)
    assert standby.renew() is False  # stands by while the holder lives
    assert _runs_today(app) == set()
    _die(app, first)

    assert standby.renew() is True

    assert _runs_today(app) == {job.id for job in scheduler.JOBS}
    assert standby.renew() is False  # holding already: nothing more to catch up
    standby.stop()


def test_standby_taking_over_after_the_daily_run_runs_nothing_again(make_app):
    """When the holder finished today's run before it died, the new holder does not repeat it."""
    app = make_app(SCHEDULER_DAILY_AT="00:00")
    first, standby = scheduler.Runner(app, kind="first"), scheduler.Runner(app, kind="standby")
    first.tick()
    _die(app, first)
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(JobRun))

    assert standby.renew() is False

    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(JobRun)) == before
    standby.stop()


def test_invalid_catalog_stops_scheduling(make_app, tmp_path):
    """The tick refuses to run on an invalid catalog and says why."""
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "local-x.yaml").write_text("controls: [", "utf-8")
    app = make_app(CATALOG_PATH=str(folder))
    result = app.test_cli_runner().invoke(args=["tick", "--today", "2026-11-27"])
    assert result.exit_code == 1 and "local-x.yaml" in result.output
    assert "refuses" in result.output


class _Collector:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd API)
        self.messages.append(envelope)
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_reminders_over_smtp_once_in_the_recipients_language(make_app):
    """Reminders go to a real SMTP server, in Japanese for a Japanese user, once each."""
    handler = _Collector()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_TIMEOUT=2)
        with app.app_context():
            catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
            owner = make_user(
                db.session, roles=["manager"], email="owner@example.jp", name="担当 一郎"
            )
            owner.language = "ja"
            own_control(db.session, "TEC-04", owner, date(2026, 10, 1))
            db.session.commit()
        runner = app.test_cli_runner()
        # FY2026-M07 (October) is due 2026-11-13: on 11-27 it is overdue (week 1).
        result = runner.invoke(args=["tick", "--today", "2026-11-27"])
        assert result.exit_code == 0, result.output
        subjects = [m.content.decode() for m in handler.messages]
        assert len(handler.messages) >= 1
        assert all(m.rcpt_tos == ["owner@example.jp"] for m in handler.messages)
        raw = "\n".join(subjects)
        assert "=?utf-8?" in raw.lower()  # Japanese subject, encoded
        import email
        from email.policy import default

        parsed = [email.message_from_bytes(m.content, policy=default) for m in handler.messages]
        assert any("期限超過" in p["Subject"] and "TEC-04" in p["Subject"] for p in parsed)
        assert any("/checks/" in p.get_content() for p in parsed)
        count = len(handler.messages)
        runner.invoke(args=["tick", "--today", "2026-11-27"])
        assert len(handler.messages) == count  # not sent again
    finally:
        controller.stop()


def test_smtp_down_is_retried_not_lost(make_app):
    """With the SMTP server down the reminder is not recorded; the next tick sends it once."""
    port = _free_port()
    app = make_app(SMTP_HOST="127.0.0.1", SMTP_PORT=port, SMTP_TIMEOUT=1)
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        owner = make_user(db.session, roles=["manager"], email="owner@example.jp")
        own_control(db.session, "TEC-04", owner, date(2026, 10, 1))
        db.session.commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["tick", "--today", "2026-11-27"])
    assert result.exit_code == 1 and "FAIL send_reminders" in result.output
    assert "connection refused" in result.output.lower()
    assert _count(app, SentReminder) == 0
    handler = _Collector()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        result = runner.invoke(args=["tick", "--today", "2026-11-27"])
        assert result.exit_code == 0, result.output
        sent = len(handler.messages)
        assert sent >= 1 and _count(app, SentReminder) == sent
        runner.invoke(args=["tick", "--today", "2026-11-27"])
        assert len(handler.messages) == sent
    finally:
        controller.stop()


def test_outbox_when_no_smtp(app, runner, owned):
    """Without SMTP the reminders are written as .eml files to instance/outbox/."""
    runner.invoke(args=["tick", "--today", "2026-11-27"])
    from pathlib import Path

    files = list((Path(app.instance_path) / "outbox").glob("*.eml"))
    assert files and _count(app, SentReminder) == len(files)


def test_background_scheduler_runs_in_process(app, owned):
    """The in-process runner takes the lock and runs the startup tick."""
    runner = scheduler.Runner(app, kind="in-process")
    sched = runner.scheduler(blocking=False)
    sched.start()
    try:
        deadline = time.time() + 20
        while time.time() < deadline and _count(app, JobRun) < len(scheduler.JOBS):
            time.sleep(0.2)
        assert _count(app, Check) > 0
    finally:
        sched.shutdown(wait=True)
        runner.stop()
    assert threading.active_count() >= 1
