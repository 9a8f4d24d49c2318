"""Scheduled jobs, declared as data, and the runner that holds the one scheduler lock.

Each job is a short call of services for a given day, idempotent (unique constraints
and 'sent once' records), so `auditapp tick --today D` can run any day again or catch
up skipped days. APScheduler 3.x job stores cannot be shared between processes and
every gunicorn worker starting a scheduler would run every job again, so web workers
never start one in production: `auditapp scheduler` is its own process, and only the
holder of the database lock runs jobs (SECURITY.md item 20).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import Flask
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from auditapp import database
from auditapp.extensions import db
from auditapp.mailer import Mailer, MailSettings
from auditapp.models import JobRun, SchedulerLock
from auditapp.models.types import utcnow
from auditapp.services import audit, catalog, checks, evidence, export, periods, reminders

log = logging.getLogger(__name__)
LOCK_NAME = "scheduler"
LEASE_SECONDS = 90
_PG_SCHEDULER_LOCK = 0x41554449545F5343
ACTOR = "scheduler"


@dataclass(frozen=True)
class Job:
    """A scheduled job: a stable id, what it does, and the call that does it for a day."""

    id: str
    title: str
    run: Callable[[Flask, date], str]


def _materialize(app: Flask, today: date) -> str:
    created = checks.materialize(db.session, today, checks.CheckSettings.from_config(app.config))
    db.session.commit()
    return f"{created} checks created"


def _overdue(app: Flask, today: date) -> str:
    marked_checks, marked_findings = checks.mark_overdue(db.session, ACTOR, today)
    db.session.commit()
    return f"{marked_checks} checks and {marked_findings} findings newly overdue"


def _reminders(app: Flask, today: date) -> str:
    cfg = app.config
    settings = reminders.ReminderSettings(preparation_lead_days=cfg["PREPARATION_LEAD_DAYS"])
    mailer = Mailer(MailSettings.from_config(cfg, app.instance_path))
    due = reminders.pending(db.session, today, settings) + reminders.pending_training(
        db.session, today
    )
    sent, failed = reminders.deliver(
        db.session, mailer, due, default_language=cfg["DEFAULT_LANGUAGE"], base_url=cfg["BASE_URL"]
    )
    if failed:
        raise RuntimeError(f"{sent} sent, {len(failed)} failed (retried next run): {failed[0]}")
    return f"{sent} reminders sent"


def _evidence_retention(app: Flask, today: date) -> str:
    result = evidence.purge_expired(db.session, app.extensions["evidence_store"], ACTOR, today)
    return f"{len(result.purged)} evidence items purged, {result.deleted} files deleted"


def _cleanup_uploads(app: Flask, today: date) -> str:
    result = evidence.remove_leftovers(db.session, app.extensions["evidence_store"], ACTOR)
    db.session.commit()
    return (
        f"{result.temp_files} abandoned upload files and {len(result.orphans)} orphaned "
        f"evidence files removed"
    )


def _export_stale_after(app: Flask) -> timedelta:
    return timedelta(minutes=float(app.config["EXPORT_STALE_MINUTES"]))


def _purge_exports(app: Flask, today: date) -> str:
    directory = export.exports_dir(app.instance_path)
    stalled = export.cleanup(db.session, directory, stale_after=_export_stale_after(app))
    removed = export.purge_expired(db.session, directory, float(app.config["EXPORT_KEEP_HOURS"]))
    db.session.commit()
    return f"{removed} expired exports removed, {stalled} stopped exports marked failed"


def run_exports(app: Flask, runner: str) -> list[tuple[str, str]]:
    """Run the queued exports (the interval job of every runner; claims are atomic, so
    several processes may look)."""
    db.session.info[audit.META_KEY] = {"client_addr": "scheduler", "request_id": None}
    return export.run_queued(
        db.session,
        app.extensions["evidence_store"],
        export.exports_dir(app.instance_path),
        runner=runner,
        stale_after=_export_stale_after(app),
    )


def _audit_checkpoint(app: Flask, today: date) -> str:
    point = audit.write_checkpoint(db.session, audit.Anchor.from_config(app.config), "daily")
    db.session.rollback()
    return f"audit checkpoint: {point.entries} entries, head {point.head}"


JOBS: list[Job] = [
    Job("materialize_checks", "Create the checks of the current and next period", _materialize),
    Job("mark_overdue", "Mark overdue checks and findings", _overdue),
    Job("send_reminders", "Send due reminders", _reminders),
    Job("evidence_retention", "Purge withdrawn evidence past retention", _evidence_retention),
    Job(
        "cleanup_uploads",
        "Remove files left by interrupted uploads (a day old: temp files, orphaned bytes)",
        _cleanup_uploads,
    ),
    Job("purge_exports", "Remove finished exports past EXPORT_KEEP_HOURS", _purge_exports),
    Job("audit_checkpoint", "Write a signed checkpoint of the audit trail", _audit_checkpoint),
]


@dataclass
class JobOutcome:
    """What one job did in a tick."""

    job_id: str
    ok: bool
    message: str


def run_tick(app: Flask, today: date) -> list[JobOutcome]:
    """Run every job once for `today`, each in its own transaction; a failing job does not
    stop the others. Inside an app context."""
    outcomes = []
    db.session.info[audit.META_KEY] = {"client_addr": "scheduler", "request_id": None}
    for job in JOBS:
        with database.writing():
            run = JobRun(job_id=job.id, run_for=today, started_at=utcnow())
            db.session.add(run)
            db.session.commit()
            run_id = run.id
            try:
                message = job.run(app, today)
                ok = True
            except Exception as exc:  # noqa: BLE001 (recorded and reported; next job runs)
                db.session.rollback()
                log.exception("job %s failed", job.id)
                message, ok = f"{type(exc).__name__}: {exc}", False
            db.session.execute(
                update(JobRun)
                .where(JobRun.id == run_id)
                .values(finished_at=utcnow(), ok=ok, message=message[:2000])
            )
            db.session.commit()
        outcomes.append(JobOutcome(job.id, ok, message))
    return outcomes


def last_successful_tick(session) -> JobRun | None:
    """The newest job run that succeeded (for doctor and the admin's view)."""
    return session.scalar(
        select(JobRun).where(JobRun.ok.is_(True)).order_by(JobRun.finished_at.desc()).limit(1)
    )


# The lock ---------------------------------------------------------------------------


def holder_name(kind: str = "scheduler") -> str:
    """Who holds the lock: process kind, host and pid."""
    return f"{kind}:{socket.gethostname()}:{os.getpid()}"


def acquire_lease(holder: str, seconds: int = LEASE_SECONDS) -> bool:
    """Take or renew the scheduler lease; False when another live holder has it."""
    now = utcnow()
    until = now + timedelta(seconds=seconds)
    with database.writing():
        moved = db.session.execute(
            update(SchedulerLock)
            .where(
                SchedulerLock.name == LOCK_NAME,
                (SchedulerLock.holder == holder) | (SchedulerLock.lease_until < now),
            )
            .values(holder=holder, lease_until=until)
            .execution_options(synchronize_session=False)
        ).rowcount
        if not moved:
            if db.session.get(SchedulerLock, LOCK_NAME) is not None:
                db.session.rollback()
                return False
            db.session.add(
                SchedulerLock(name=LOCK_NAME, holder=holder, lease_until=until, acquired_at=now)
            )
            try:
                db.session.commit()
            except IntegrityError:
                db.session.rollback()
                return False
            return True
        db.session.commit()
    return True


def release_lease(holder: str) -> None:
    """Give the lease up (only if we hold it)."""
    with database.writing():
        db.session.execute(
            update(SchedulerLock)
            .where(SchedulerLock.name == LOCK_NAME, SchedulerLock.holder == holder)
            .values(lease_until=utcnow() - timedelta(seconds=1))
            .execution_options(synchronize_session=False)
        )
        db.session.commit()


def current_holder(session) -> SchedulerLock | None:
    """The lease row (holder and expiry), if any."""
    return session.get(SchedulerLock, LOCK_NAME)


class PostgresLock:
    """A session-level advisory lock held on a dedicated connection for the process life."""

    def __init__(self, engine):
        self.engine = engine
        self.conn = None

    def try_acquire(self) -> bool:
        if self.conn is None:
            self.conn = self.engine.connect()
        got = self.conn.execute(
            text("SELECT pg_try_advisory_lock(:k)"), {"k": _PG_SCHEDULER_LOCK}
        ).scalar()
        self.conn.commit()
        return bool(got)

    def release(self) -> None:
        if self.conn is not None:
            # The pool keeps the server session alive after close(), so unlock explicitly
            # (a process that dies loses the session and with it the lock).
            self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_SCHEDULER_LOCK})
            self.conn.commit()
            self.conn.close()
            self.conn = None


# The runner -------------------------------------------------------------------------


def today_in(app: Flask) -> date:
    """Today in the configured zone."""
    return periods.today_in(app.config["TIMEZONE"])


def daily_run_missed(app: Flask, now: datetime) -> bool:
    """Today's daily run is due (SCHEDULER_DAILY_AT has passed in the configured zone) and
    not every job of it has finished: the holder before us died before (or while) running
    it. Inside an app context."""
    local = now.astimezone(ZoneInfo(app.config["TIMEZONE"]))
    hour, minute = (int(x) for x in app.config["SCHEDULER_DAILY_AT"].split(":"))
    if local.time() < time(hour, minute):
        return False
    finished = set(
        db.session.scalars(
            select(JobRun.job_id).where(
                JobRun.run_for == local.date(), JobRun.finished_at.is_not(None)
            )
        )
    )
    return not {job.id for job in JOBS} <= finished


def check_catalog(app: Flask) -> list[str]:
    """Problems that stop scheduling: an invalid catalog (listed as file:line messages)."""
    loaded = catalog.load_catalog(app.config["CATALOG_PATH"])
    return [str(e) for e in loaded.errors]


def start_in_process(app: Flask) -> Runner:
    """The single-process set-up (`make run`): a background scheduler inside the web
    process. Never used with several workers (SCHEDULER_IN_PROCESS stays off there)."""
    runner = Runner(app, kind="in-process")
    runner.scheduler(blocking=False).start()
    return runner


class Runner:
    """Runs the daily tick while holding the lock; stands by while another process does."""

    def __init__(self, app: Flask, kind: str = "scheduler"):
        self.app = app
        self.holder = holder_name(kind)
        self.pg_lock = None
        self.holding = False
        self._lock = threading.Lock()
        self._sched = None  # the APScheduler running this runner's jobs, once started

    def keep_lock(self) -> bool:
        """Acquire or renew the lock; returns whether this process may run jobs."""
        with self.app.app_context(), self._lock:
            if db.engine.dialect.name == "postgresql":
                if self.pg_lock is None:
                    self.pg_lock = PostgresLock(db.engine)
                if not self.holding and not self.pg_lock.try_acquire():
                    return False
            was = self.holding
            self.holding = acquire_lease(self.holder)
            if self.holding and not was:
                log.info("scheduler lock acquired by %s", self.holder)
            return self.holding

    def renew(self) -> bool:
        """Renew the lease (every LEASE_SECONDS / 3). A process that has just taken the lock
        over runs today's jobs at once when they were missed, instead of waiting for
        tomorrow's run; returns whether it did (or scheduled it)."""
        was = self.holding
        if not self.keep_lock() or was:
            return False
        with self.app.app_context():
            missed = daily_run_missed(self.app, utcnow())
            db.session.rollback()
        if not missed:
            return False
        log.info("scheduler %s took over after a missed daily run; catching up now", self.holder)
        if self._sched is None:
            self.tick()
        else:
            # A job of its own, so the lease renewal keeps running while the jobs do.
            self._sched.add_job(self.tick, id="catch_up_tick", replace_existing=True)
        return True

    def tick(self, today: date | None = None) -> list[JobOutcome]:
        """Run the jobs for today if this process holds the lock."""
        if not self.keep_lock():
            log.info("another scheduler holds the lock; standing by")
            return []
        with self.app.app_context():
            return run_tick(self.app, today or today_in(self.app))

    def stop(self) -> None:
        with self.app.app_context():
            if self.holding:
                release_lease(self.holder)
            if self.pg_lock is not None:
                self.pg_lock.release()
            db.session.remove()

    def exports(self) -> list[tuple[str, str]]:
        """Run the queued exports (every EXPORT_POLL_SECONDS)."""
        with self.app.app_context():
            return run_exports(self.app, self.holder)

    def scheduler(self, blocking: bool):
        """An APScheduler with the daily tick, the lock renewal and the export runner."""
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.schedulers.blocking import BlockingScheduler
        from apscheduler.triggers.cron import CronTrigger

        zone = ZoneInfo(self.app.config["TIMEZONE"])
        hour, minute = (int(x) for x in self.app.config["SCHEDULER_DAILY_AT"].split(":"))
        cls = BlockingScheduler if blocking else BackgroundScheduler
        sched = cls(
            timezone=zone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 6 * 3600},
        )
        sched.add_job(
            self.tick,
            CronTrigger(hour=hour, minute=minute, timezone=zone),
            id="daily_tick",
            replace_existing=True,
        )
        sched.add_job(
            self.renew,
            "interval",
            seconds=LEASE_SECONDS // 3,
            id="lock_renewal",
            replace_existing=True,
        )
        sched.add_job(
            self.exports,
            "interval",
            seconds=float(self.app.config["EXPORT_POLL_SECONDS"]),
            id="run_exports",
            replace_existing=True,
        )
        # Catch up at start: today's jobs may have been missed while nothing ran.
        sched.add_job(self.tick, id="startup_tick", replace_existing=True)
        self._sched = sched
        return sched
