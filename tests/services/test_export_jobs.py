"""Export jobs in the database: queued, claimed by exactly one runner, one at a time,
progress and heartbeat in the row, crash leftovers cleaned up, expiry."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from auditapp import database, scheduler
from auditapp.errors import Conflict, NotFound
from auditapp.extensions import db
from auditapp.models import AuditEvent, ExportJob, User
from auditapp.services import export
from auditapp.services.export import jobs
from auditapp.storage import sha256_file
from tests.factories import make_user
from tests.services.test_export import build_world, request_for

MINUTE = timedelta(minutes=1)


@pytest.fixture
def world(app, session):
    return build_world(app, session)


@pytest.fixture
def store(app):
    return app.extensions["evidence_store"]


@pytest.fixture
def directory(app):
    return export.exports_dir(app.instance_path)


def _auditor(session, name="監査 一郎", email=None) -> User:
    person = make_user(session, roles=["auditor"], name=name, email=email)
    session.commit()
    return person


def _queue(session, owner, bundle=False) -> ExportJob:
    job = export.enqueue(session, owner=owner, request=request_for(), bundle=bundle)
    session.commit()
    return job


def _row(session, job_id: int) -> ExportJob:
    """The job's row as it is now, detached, with no transaction left open (a test's open
    transaction would hold SQLite's write lock against the runner)."""
    session.rollback()
    with database.reading():
        job = session.get(ExportJob, job_id)
        session.expunge(job)
        session.rollback()
    return job


def test_a_queued_job_runs_and_is_recorded(app, session, world, store, directory):
    """run_queued claims the queued job, writes its workbook with progress in the row,
    records export.create under the owner's name, and marks it done."""
    owner = _auditor(session)
    job = _queue(session, owner)
    job_id, public_id = job.id, job.public_id
    assert job.state == "queued" and job.percent == 0
    ran = export.run_queued(session, store, directory, runner="test:1", stale_after=MINUTE)
    assert ran == [(public_id, "done")]
    job = _row(session, job_id)
    assert (job.state, job.percent, job.running_slot) == ("done", 100, None)
    assert job.done == job.total > 0 and job.runner == "test:1"
    assert job.rows["Checks"] == 13 and job.missing == []
    path = export.job_file(directory, job)
    assert path.is_file() and job.workbook_sha256 == sha256_file(path)[0]
    assert job.started_at <= job.heartbeat_at <= job.finished_at
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "export.create")).one()
    assert event.object_id == public_id and event.actor_id == owner.id
    assert json.loads(event.after_json)["sha256"] == job.workbook_sha256
    assert export.run_queued(session, store, directory, runner="test:1", stale_after=MINUTE) == []


def test_one_export_at_a_time(app, session, world, store, directory):
    """While a job runs another waits queued, told behind whom; a second claim is refused
    naming who started the running one; once that is done the waiting one runs."""
    first = _queue(session, _auditor(session, "監査 一郎"))
    second = _queue(session, _auditor(session, "監査 二郎"))
    first_id, second_id = first.id, second.id
    jobs.claim(session, first_id, "other:host:1", workbook=None, bundle=None)
    assert export.run_queued(session, store, directory, runner="me", stale_after=MINUTE) == []
    waiting = _row(session, second_id)
    assert waiting.state == "queued"
    text = str(export.waiting_for(session, waiting))
    assert "Waiting behind the export started by 監査 一郎" in text and "0 more" in text
    with pytest.raises(export.ExportBusy) as info:
        jobs.claim(session, second_id, "me", workbook=None, bundle=None)
    assert "Another export is running (started by 監査 一郎" in str(info.value)
    session.execute(
        update(ExportJob)
        .where(ExportJob.id == first_id)
        .values(state="done", running_slot=None, finished_at=datetime.now(UTC))
    )
    session.commit()
    ran = export.run_queued(session, store, directory, runner="me", stale_after=MINUTE)
    assert [p for p, _ in ran] == [waiting.public_id]


def test_a_job_is_claimed_once(session, world):
    """Claiming a job someone already claimed says so (JobTaken)."""
    job = _queue(session, _auditor(session))
    jobs.claim(session, job.id, "a", workbook=None, bundle=None)
    with pytest.raises(export.JobTaken):
        jobs.claim(session, job.id, "b", workbook=None, bundle=None)


def _claim_worker(config: dict, job_ids: list[int], barrier, results):
    """Worker: try to claim the queued jobs, oldest first; report which one it got."""
    from auditapp import create_app

    app = create_app(config)
    with app.app_context():
        barrier.wait(timeout=60)
        for job_id in job_ids:
            try:
                jobs.claim(db.session, job_id, f"worker:{os.getpid()}", workbook=None, bundle=None)
                results.put(job_id)
                return
            except export.JobTaken:
                continue
            except export.ExportBusy:
                break
        results.put(None)


def test_claims_across_processes_let_exactly_one_run(app, session, world):
    """Four processes claiming two queued jobs at once: exactly one claim wins (the other
    job waits), on SQLite and on PostgreSQL."""
    owner = _auditor(session)
    ids = [_queue(session, owner).id, _queue(session, owner).id]
    session.rollback()
    keys = ("TESTING", "SECRET_KEY", "DATABASE_URL", "SQLALCHEMY_ENGINE_OPTIONS")
    config = {k: app.config[k] for k in keys} | {"INSTANCE_PATH": app.instance_path}
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_claim_worker, args=(config, ids, barrier, results)) for _ in "abcd"
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    got = [results.get(timeout=5) for _ in procs]
    assert sorted(g for g in got if g is not None) == [ids[0]]
    states = {j.id: j.state for j in session.scalars(select(ExportJob))}
    assert states == {ids[0]: "running", ids[1]: "queued"}


def test_a_person_may_not_queue_without_limit(session, world):
    """At most three exports waiting or running per person: the fourth is refused."""
    owner = _auditor(session)
    for _ in range(jobs.MAX_WAITING_PER_PERSON):
        _queue(session, owner)
    with pytest.raises(Conflict, match="already have 3 exports waiting or running"):
        export.enqueue(session, owner=owner, request=request_for(), bundle=False)


def test_only_the_owner_and_admins_see_a_job(session, world):
    """get_job: the owner and admins; another auditor gets NotFound, as do odd ids."""
    owner = _auditor(session)
    other = _auditor(session, "他 人")
    admin = session.get(User, world.admin_id)
    job = _queue(session, owner)
    assert export.get_job(session, owner, job.public_id).id == job.id
    assert export.get_job(session, admin, job.public_id).id == job.id
    for viewer, public_id in ((other, job.public_id), (owner, "x" * 200), (owner, "")):
        with pytest.raises(NotFound):
            export.get_job(session, viewer, public_id)


def test_a_run_taken_away_records_nothing(session, world, store, directory, monkeypatch):
    """A job marked failed while its runner was still writing (its heartbeat had stopped):
    the runner's late result is discarded — no file, no audit event."""
    job = _queue(session, _auditor(session))
    job_id = job.id
    real = jobs.produce

    def produce_then_lose(*args, **kwargs):
        result = real(*args, **kwargs)
        jobs.cleanup(session, directory, stale_after=-MINUTE)  # everything looks stale
        return result

    monkeypatch.setattr(jobs, "produce", produce_then_lose)
    with pytest.raises(export.JobTaken):
        export.run_and_record(session, store, directory, job, runner="slow", stale_after=MINUTE)
    job = _row(session, job_id)
    assert (job.state, job.failure) == ("failed", "stalled")
    assert not export.job_file(directory, job).exists()
    assert session.scalar(select(AuditEvent).where(AuditEvent.action == "export.create")) is None


def test_heartbeat_stops_a_runner_whose_job_was_taken(session, world):
    """The progress callback writes done/total and the heartbeat; once the job is no
    longer this runner's it raises JobTaken, which stops the export."""
    job = _queue(session, _auditor(session))
    job_id = job.id
    jobs.claim(session, job_id, "r1", workbook=None, bundle=None)
    beat = jobs.Heartbeat(session, job_id, "r1", interval=0)
    beat(5, 10)
    assert (_row(session, job_id).done, _row(session, job_id).total) == (5, 10)
    session.execute(update(ExportJob).where(ExportJob.id == job_id).values(runner="r2"))
    session.commit()
    with pytest.raises(export.JobTaken):
        beat(6, 10)


def test_a_failing_export_is_marked_failed(session, world, store, directory, monkeypatch):
    """An error while writing marks the job failed with a message and frees the slot."""
    job = _queue(session, _auditor(session))
    job_id, public_id = job.id, job.public_id

    def broken(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(jobs, "write_workbook", broken)
    ran = export.run_queued(session, store, directory, runner="r", stale_after=MINUTE)
    assert ran == [(public_id, "failed: OSError: [Errno 28] No space left on device")]
    job = _row(session, job_id)
    assert (job.state, job.failure, job.running_slot) == ("failed", "error", None)
    assert "OSError" in job.error


def test_stalled_jobs_and_leftovers_are_cleaned_up(session, world, directory):
    """A running job whose heartbeat is older than the bound is marked failed and its
    partial file removed; an old stray .part goes too; fresh files and other jobs stay."""
    job = _queue(session, _auditor(session))
    job_id = job.id
    target = export.job_file(directory, job)
    jobs.claim(session, job_id, "dead:host:1", workbook=target, bundle=None)
    partial = target.with_name(f".{target.name}.abcd1234.part")
    partial.write_bytes(b"half a workbook")
    stray = directory / ".old-export.xlsx.0000.part"
    stray.write_bytes(b"left behind")
    fresh = directory / ".fresh.xlsx.1111.part"
    fresh.write_bytes(b"being written")
    old, recent = time.time() - 3600, time.time() + 11 * 60  # as seen from `later` below
    os.utime(stray, (old, old))
    os.utime(fresh, (recent, recent))
    assert jobs.cleanup(session, directory, stale_after=10 * MINUTE) == 0
    assert partial.exists()
    later = datetime.now(UTC) + 11 * MINUTE
    assert jobs.cleanup(session, directory, stale_after=10 * MINUTE, now=later) == 1
    job = _row(session, job_id)
    assert (job.state, job.failure, job.running_slot) == ("failed", "stalled", None)
    assert "no sign of life" in job.error
    assert not partial.exists() and not stray.exists() and fresh.exists()


def test_purge_removes_only_expired_finished_jobs(session, world, store, directory):
    """Finished jobs past the keep time go with their files; running ones and files the
    CLI wrote elsewhere stay."""
    done = _queue(session, _auditor(session))
    export.run_queued(session, store, directory, runner="r", stale_after=MINUTE)
    done = _row(session, done.id)
    path = export.job_file(directory, done)
    assert export.purge_expired(session, directory, 24) == 0
    later = datetime.now(UTC) + timedelta(hours=25)
    assert export.purge_expired(session, directory, 24, now=later) == 1
    session.commit()
    assert not path.exists() and session.scalars(select(ExportJob)).all() == []


def test_the_scheduler_runs_queued_exports(app, session, world):
    """The scheduler's interval job runs what is queued; the daily purge_exports job marks
    stalled jobs and removes expired ones."""
    job = _queue(session, _auditor(session))
    job_id = job.id
    session.commit()
    runner = scheduler.Runner(app, kind="test")
    sched = runner.scheduler(blocking=False)
    assert "run_exports" in {j.id for j in sched.get_jobs()}
    assert [outcome for _, outcome in runner.exports()] == ["done"]
    assert _row(session, job_id).state == "done"
    assert "purge_exports" in {j.id for j in scheduler.JOBS}


_CHILD = """
import json, sys, time
from auditapp import create_app
from auditapp.extensions import db
from auditapp.services import export
from auditapp.services.export import writer

config = json.loads(sys.argv[1])
app = create_app(config)
real = writer.SheetWriter.append

def slow(self, values):
    time.sleep(0.2)  # long enough to be killed while writing
    real(self, values)

writer.SheetWriter.append = slow
with app.app_context():
    export.run_queued(
        db.session, app.extensions["evidence_store"], export.exports_dir(app.instance_path),
        runner="child", stale_after=__import__("datetime").timedelta(minutes=5),
    )
"""


def test_a_runner_killed_mid_export_leaves_nothing_behind(app, session, world, directory):
    """A runner process killed (SIGKILL) while writing a bundle leaves a running job and a
    partial file; the next cleanup marks the job failed, removes the file, and the next
    export can run."""
    job = _queue(session, _auditor(session), bundle=True)
    job_id = job.id
    keys = ("TESTING", "SECRET_KEY", "DATABASE_URL", "SQLALCHEMY_ENGINE_OPTIONS")
    config = {k: app.config[k] for k in keys} | {"INSTANCE_PATH": app.instance_path}
    root = Path(__file__).resolve().parents[2]
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, json.dumps(config)],
        cwd=root,
        env=os.environ | {"PYTHONPATH": str(root)},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if _row(session, job_id).state == "running" and list(directory.glob(".*.part")):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the child never started writing")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert _row(session, job_id).state == "running"
    assert list(directory.glob(".*.part"))
    later = datetime.now(UTC) + 10 * MINUTE
    assert jobs.cleanup(session, directory, stale_after=5 * MINUTE, now=later) == 1
    job = _row(session, job_id)
    assert (job.state, job.failure) == ("failed", "stalled")
    assert list(directory.glob(".*.part")) == [] and list(directory.glob("*.zip")) == []
    _queue(session, _auditor(session, "次 の人"))
    ran = export.run_queued(
        session, app.extensions["evidence_store"], directory, runner="r", stale_after=MINUTE
    )
    assert [outcome for _, outcome in ran] == ["done"]
