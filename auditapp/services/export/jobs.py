"""Export jobs: queued in the database, run outside web workers, one at a time, crash-safe.

The web page only enqueues a job and polls its row. A runner — the scheduler process
every few seconds, `auditapp export run-queued`, or the synchronous `auditapp export`
for a job of its own — claims a job with a conditional UPDATE, so exactly one runner
gets it, in any number of processes, on SQLite and PostgreSQL. The UNIQUE
`running_slot` makes "one export at a time per instance" a rule of the database: a
second claim fails while a job runs, and the job waits queued.

`run_and_record` is the one export flow: claim → write the workbook (and bundle) with
progress and a heartbeat in the job's row → record "export.create" in the audit trail
and mark the job done, in one transaction. A runner that dies leaves a job whose
heartbeat stops; `cleanup` (run before each claim and by the daily purge) marks it
failed and removes its partial files, and removes leftover `.part` files.

The runner commits as it goes (claim, progress, the end): a job spans many short
transactions so that none stays open while files are written (SECURITY.md item 17).
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from time import monotonic

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from auditapp import access, database
from auditapp.errors import Conflict, NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import AuditEvent, ExportFailure, ExportJob, ExportState, User
from auditapp.models.types import utcnow
from auditapp.services import audit
from auditapp.services.export.bundle import write_bundle
from auditapp.services.export.request import ExportRequest
from auditapp.services.export.workbook import ExportResult, write_workbook
from auditapp.storage import EvidenceStore

log = logging.getLogger(__name__)
MAX_WAITING_PER_PERSON = 3  # queued or running jobs one person may have
PROGRESS_INTERVAL = 1.0  # seconds between progress (and heartbeat) writes
_QUEUED, _RUNNING = ExportState.QUEUED.value, ExportState.RUNNING.value
_FINISHED = (ExportState.DONE.value, ExportState.FAILED.value)


class ExportBusy(Conflict):
    """Another export is running in this instance."""


class JobTaken(Exception):
    """The job is no longer queued (another runner claimed it), or was taken from its
    runner (marked failed after its heartbeat stopped)."""


def exports_dir(instance_path: str | Path) -> Path:
    """instance/exports/: the finished files of queued jobs (created 0700)."""
    path = Path(instance_path) / "exports"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def job_file(directory: Path, job: ExportJob) -> Path:
    """Where a queued job's workbook or bundle is kept for download."""
    return Path(directory) / f"{job.public_id}{job.suffix}"


def job_request(job: ExportJob) -> ExportRequest:
    """The export request a job was made for."""
    return ExportRequest(
        job.scope_from, job.scope_to, job.category_ids, job.lang, job.timezone, job.scope_label
    )


# Asking and looking -----------------------------------------------------------------------


def enqueue(
    session: Session,
    *,
    owner: User | str,
    request: ExportRequest,
    bundle: bool,
    pinned: bool = False,
) -> ExportJob:
    """A queued job for `owner` (flushed; the caller commits). A person may have at most
    MAX_WAITING_PER_PERSON jobs queued or running."""
    if isinstance(owner, User):
        waiting = session.scalar(
            select(func.count())
            .select_from(ExportJob)
            .where(ExportJob.owner_id == owner.id, ExportJob.state.in_([_QUEUED, _RUNNING]))
        )
        if waiting >= MAX_WAITING_PER_PERSON:
            raise Conflict(
                _l(
                    "You already have %(n)s exports waiting or running; start another when "
                    "one has finished.",
                    n=waiting,
                )
            )
    meta = session.info.get(audit.META_KEY) or {}
    job = ExportJob(
        public_id=secrets.token_urlsafe(16),
        owner_id=owner.id if isinstance(owner, User) else None,
        owner_label=audit.actor_label(owner)[:300],
        scope_from=request.scope_from,
        scope_to=request.scope_to,
        scope_label=request.label,
        categories=" ".join(request.categories),
        lang=request.lang,
        timezone=request.timezone,
        bundle=bundle,
        client_addr=meta.get("client_addr"),
        request_id=meta.get("request_id"),
        pinned=pinned,
        state=_QUEUED,
    )
    session.add(job)
    session.flush()
    return job


def get_job(session: Session, viewer: User, public_id: str) -> ExportJob:
    """A job the viewer may see (access.can_see_export), else NotFound."""
    job = None
    if isinstance(public_id, str) and 0 < len(public_id) <= 32:
        job = session.scalar(select(ExportJob).where(ExportJob.public_id == public_id))
    if job is None or not access.can_see_export(viewer, job):
        raise NotFound(_l("No such export."))
    return job


def list_jobs(session: Session, owner_id: int, limit: int = 50) -> list[ExportJob]:
    """One person's jobs, newest first."""
    return list(
        session.scalars(
            select(ExportJob)
            .where(ExportJob.owner_id == owner_id)
            .order_by(ExportJob.id.desc())
            .limit(limit)
        )
    )


def running_job(session: Session) -> ExportJob | None:
    """The job running now, if any."""
    return session.scalar(select(ExportJob).where(ExportJob.state == _RUNNING).limit(1))


def waiting_for(session: Session, job: ExportJob):
    """For a queued job: what it waits for, as plain text (None when it is not queued)."""
    if job.state != _QUEUED:
        return None
    ahead = session.scalar(
        select(func.count())
        .select_from(ExportJob)
        .where(ExportJob.state == _QUEUED, ExportJob.pinned.is_(False), ExportJob.id < job.id)
    )
    running = running_job(session)
    if running is None:
        return _l(
            "Waiting for the export runner (the scheduler) to start it; %(n)s queued ahead.",
            n=ahead,
        )
    at = (running.started_at or running.created_at).strftime("%Y-%m-%d %H:%M")
    return _l(
        "Waiting behind the export started by %(who)s at %(at)s UTC (%(p)s%% done); "
        "%(n)s more queued ahead.",
        who=running.owner_label,
        at=at,
        p=running.percent,
        n=ahead,
    )


def busy_error(session: Session) -> ExportBusy:
    """The refusal while another export runs, naming who started it and when."""
    running = running_job(session)
    who = running.owner_label if running else "?"
    at = (
        running.started_at.strftime("%Y-%m-%d %H:%M UTC") if running and running.started_at else "?"
    )
    return ExportBusy(
        _l(
            "Another export is running (started by %(who)s at %(at)s). "
            "Try again when it has finished.",
            who=who,
            at=at,
        )
    )


# Claiming and running ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """What a run needs from its job, read once (the ORM row expires at every commit)."""

    id: int
    public_id: str
    owner_id: int | None
    owner_label: str
    request: ExportRequest
    bundle: bool
    meta: dict

    @classmethod
    def of(cls, job: ExportJob) -> _Spec:
        return cls(
            job.id,
            job.public_id,
            job.owner_id,
            job.owner_label,
            job_request(job),
            job.bundle,
            {"client_addr": job.client_addr, "request_id": job.request_id},
        )


def claim(
    session: Session, job_id: int, runner: str, *, workbook: Path | None, bundle: Path | None
) -> None:
    """Take a queued job for `runner`: one conditional UPDATE, so exactly one runner wins.
    Raises ExportBusy while another job runs, JobTaken when the job is no longer queued."""
    now = utcnow()
    busy = False
    with database.writing():
        try:
            claimed = session.execute(
                update(ExportJob)
                .where(ExportJob.id == job_id, ExportJob.state == _QUEUED)
                .values(
                    state=_RUNNING,
                    running_slot=1,
                    runner=runner[:200],
                    started_at=now,
                    heartbeat_at=now,
                    done=0,
                    total=0,
                    workbook_file=str(Path(workbook).resolve()) if workbook else None,
                    bundle_file=str(Path(bundle).resolve()) if bundle else None,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            session.commit()
        except IntegrityError:  # the running slot is taken: another job runs
            session.rollback()
            busy = True
    if busy:
        with database.reading():
            error = busy_error(session)
            session.rollback()
        raise error
    if not claimed:
        raise JobTaken(f"export job {job_id} is no longer queued")


class Heartbeat:
    """The progress callback of a run: writes done/total and the heartbeat to the job's row
    (its own short transaction on its own connection, at most every `interval` seconds);
    raises JobTaken when the row no longer says this runner has it."""

    def __init__(self, session: Session, job_id: int, runner: str, interval: float):
        self.engine = session.get_bind()
        self.job_id = job_id
        self.runner = runner
        self.interval = interval
        self._last = -interval

    def __call__(self, done: int, total: int) -> None:
        now = monotonic()
        if now - self._last < self.interval and done < total:
            return
        self._last = now
        with database.writing(), self.engine.begin() as conn:
            moved = conn.execute(
                update(ExportJob)
                .where(
                    ExportJob.id == self.job_id,
                    ExportJob.state == _RUNNING,
                    ExportJob.runner == self.runner,
                )
                .values(done=done, total=total, heartbeat_at=utcnow())
            ).rowcount
        if not moved:
            raise JobTaken(f"export job {self.job_id} was taken from {self.runner}")


def produce(
    session: Session,
    store: EvidenceStore,
    request: ExportRequest,
    *,
    workbook: Path | None,
    bundle: Path | None,
    generated_by: str,
    progress: Callable[[int, int], None] | None = None,
) -> ExportResult:
    """Write the workbook, or the bundle (keeping the workbook too when `workbook` is
    given); files appear only once complete."""
    if bundle is not None:
        return write_bundle(
            session,
            store,
            request,
            bundle,
            generated_by=generated_by,
            workbook_path=workbook,
            progress=progress,
        )
    return write_workbook(
        session, request, workbook, generated_by=generated_by, progress=progress, store=store
    )


def run_and_record(
    session: Session,
    store: EvidenceStore,
    directory: Path,
    job: ExportJob,
    *,
    runner: str,
    stale_after: timedelta,
    workbook_path: Path | None = None,
    bundle_path: Path | None = None,
    progress_interval: float = PROGRESS_INTERVAL,
) -> ExportResult:
    """The one export flow: clean up after dead runs and claim the job, write its files
    (to `workbook_path` and `bundle_path` when given, else into `directory` for
    download), record the export in the audit trail and mark the job done — or mark it
    failed and remove what it wrote. Raises ExportBusy (another job runs; this one stays
    queued) or JobTaken."""
    spec = _Spec.of(job)
    if workbook_path is None and bundle_path is None:
        target = job_file(directory, job)
        workbook_path, bundle_path = (None, target) if spec.bundle else (target, None)
    session.commit()
    cleanup(session, directory, stale_after=stale_after)
    claim(session, spec.id, runner, workbook=workbook_path, bundle=bundle_path)
    try:
        result = produce(
            session,
            store,
            spec.request,
            workbook=workbook_path,
            bundle=bundle_path,
            generated_by=spec.owner_label,
            progress=Heartbeat(session, spec.id, runner, progress_interval),
        )
        _record_done(session, spec, runner, result)
    except BaseException as exc:
        session.rollback()
        _mark_failed(session, spec.id, runner, exc)
        _remove_outputs(workbook_path, bundle_path)
        raise
    return result


def _record_done(session: Session, spec: _Spec, runner: str, result: ExportResult) -> None:
    """Record "export.create" and mark the job done, in one transaction (only while the
    job is still this runner's)."""
    with database.writing():
        actor = session.get(User, spec.owner_id) if spec.owner_id else None
        saved = session.info.get(audit.META_KEY)
        session.info[audit.META_KEY] = spec.meta if spec.meta.get("client_addr") else saved
        try:
            record_export(
                session,
                actor or spec.owner_label,
                spec.request,
                result,
                export_id=spec.public_id,
                bundle=spec.bundle,
            )
        finally:
            session.info[audit.META_KEY] = saved
        done = session.execute(
            update(ExportJob)
            .where(ExportJob.id == spec.id, ExportJob.state == _RUNNING, ExportJob.runner == runner)
            .values(
                state=ExportState.DONE.value,
                running_slot=None,
                finished_at=utcnow(),
                done=ExportJob.total,
                workbook_size=result.workbook_size,
                workbook_sha256=result.workbook_sha256,
                bundle_size=result.size if spec.bundle else None,
                bundle_sha256=result.sha256 if spec.bundle else None,
                rows_json=json.dumps(result.rows, ensure_ascii=False),
                missing_json=json.dumps([str(m) for m in result.missing], ensure_ascii=False),
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        if not done:
            session.rollback()
            raise JobTaken(f"export job {spec.id} was taken from {runner}")
        session.commit()


def _mark_failed(session: Session, job_id: int, runner: str, exc: BaseException) -> None:
    """Mark a run failed (a job taken from its runner was already marked)."""
    if isinstance(exc, JobTaken):
        return
    log.error("export job %s failed", job_id, exc_info=exc)
    message = f"the export failed ({type(exc).__name__}); the error was logged by {runner}"
    with database.writing():
        session.execute(
            update(ExportJob)
            .where(ExportJob.id == job_id, ExportJob.state == _RUNNING, ExportJob.runner == runner)
            .values(
                state=ExportState.FAILED.value,
                running_slot=None,
                finished_at=utcnow(),
                failure=ExportFailure.ERROR.value,
                error=message[:500],
            )
            .execution_options(synchronize_session=False)
        )
        session.commit()


def _remove_outputs(*paths: Path | None) -> None:
    """Remove a failed run's files and their partial files."""
    for path in paths:
        if path is not None:
            path.unlink(missing_ok=True)
            _remove_partials(path)


def _remove_partials(target: Path) -> int:
    """Remove the partial files of a target (`.<name>.<random>.part`, next to it)."""
    removed = 0
    try:
        for part in target.parent.glob(f".{target.name}.*.part"):
            part.unlink(missing_ok=True)
            removed += 1
    except OSError:
        pass  # the folder is gone or unreadable (another host's path): nothing to remove
    return removed


def run_queued(
    session: Session,
    store: EvidenceStore,
    directory: Path,
    *,
    runner: str,
    stale_after: timedelta,
) -> list[tuple[str, str]]:
    """Clean up, then run queued jobs oldest first until none is left or another runner
    has one running. Returns (public id, "done" or the error) for each job run."""
    cleanup(session, directory, stale_after=stale_after)
    ran: list[tuple[str, str]] = []
    while True:
        session.rollback()
        with database.reading():
            job = session.scalar(
                select(ExportJob)
                .where(ExportJob.state == _QUEUED, ExportJob.pinned.is_(False))
                .order_by(ExportJob.id)
                .limit(1)
            )
            public_id = job.public_id if job is not None else None
        if job is None:
            session.rollback()
            return ran
        try:
            run_and_record(session, store, directory, job, runner=runner, stale_after=stale_after)
            ran.append((public_id, "done"))
        except ExportBusy:
            session.rollback()
            return ran  # another runner has one running; ours waits
        except JobTaken:
            continue
        except Exception as exc:  # noqa: BLE001 (marked failed and logged; the next job runs)
            ran.append((public_id, f"failed: {type(exc).__name__}: {exc}"))


def export_now(
    session: Session,
    store: EvidenceStore,
    directory: Path,
    request: ExportRequest,
    *,
    actor: User | str,
    runner: str,
    stale_after: timedelta,
    workbook_path: Path,
    bundle_path: Path | None,
) -> ExportResult:
    """Run an export at once in this process (the synchronous CLI): a job of its own,
    pinned so no other runner takes it; ExportBusy (and no job left) while another runs."""
    job = enqueue(
        session, owner=actor, request=request, bundle=bundle_path is not None, pinned=True
    )
    session.commit()
    job_id = job.id
    try:
        return run_and_record(
            session,
            store,
            directory,
            job,
            runner=runner,
            stale_after=stale_after,
            workbook_path=workbook_path,
            bundle_path=bundle_path,
        )
    except ExportBusy:
        with database.writing():
            session.execute(delete(ExportJob).where(ExportJob.id == job_id))
            session.commit()
        raise


# Crash leftovers and expiry ----------------------------------------------------------------


def cleanup(
    session: Session, directory: Path, *, stale_after: timedelta, now: datetime | None = None
) -> int:
    """Mark running jobs whose heartbeat is older than `stale_after` failed (their partial
    files removed), pinned jobs never started as failed, and remove leftover `.part`
    files in `directory` older than the bound. Returns how many jobs were marked."""
    now = now or utcnow()
    cutoff = now - stale_after
    session.rollback()
    with database.reading():
        stale = session.execute(
            select(
                ExportJob.id, ExportJob.heartbeat_at, ExportJob.workbook_file, ExportJob.bundle_file
            ).where(ExportJob.state == _RUNNING, ExportJob.heartbeat_at < cutoff)
        ).all()
        orphans = session.scalars(
            select(ExportJob.id).where(
                ExportJob.state == _QUEUED,
                ExportJob.pinned.is_(True),
                ExportJob.created_at < cutoff,
            )
        ).all()
        session.rollback()
    marked = 0
    for row in stale:
        seen = row.heartbeat_at.strftime("%Y-%m-%d %H:%M:%S")
        message = (
            f"the export stopped: its runner showed no sign of life after {seen} UTC "
            "(a crash or a restart); its partial file was removed"
        )
        if _fail_where(session, row.id, ExportJob.heartbeat_at < cutoff, message, now):
            marked += 1
            for name in (row.workbook_file, row.bundle_file):
                if name:
                    _remove_partials(Path(name))
    for job_id in orphans:
        message = "the command that asked for this export ended before it started"
        marked += _fail_where(session, job_id, ExportJob.state == _QUEUED, message, now)
    _remove_old_parts(session, Path(directory), cutoff)
    return marked


def _fail_where(session: Session, job_id: int, condition, message: str, now: datetime) -> bool:
    """Mark one job failed as stalled if `condition` still holds (one transaction)."""
    with database.writing():
        moved = session.execute(
            update(ExportJob)
            .where(ExportJob.id == job_id, ExportJob.state.in_([_QUEUED, _RUNNING]), condition)
            .values(
                state=ExportState.FAILED.value,
                running_slot=None,
                finished_at=now,
                failure=ExportFailure.STALLED.value,
                error=message,
            )
            .execution_options(synchronize_session=False)
        ).rowcount
        session.commit()
    return bool(moved)


def _remove_old_parts(session: Session, directory: Path, cutoff: datetime) -> int:
    """Remove `.part` files in the exports folder older than the cutoff, except those of
    the job running now."""
    with database.reading():
        running = session.scalar(select(ExportJob.public_id).where(ExportJob.state == _RUNNING))
        session.rollback()
    removed = 0
    for part in directory.glob(".*.part"):
        if running and part.name.startswith(f".{running}."):
            continue
        try:
            if datetime.fromtimestamp(part.stat().st_mtime, UTC) < cutoff:
                part.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def purge_expired(
    session: Session, directory: Path, keep_hours: float, now: datetime | None = None
) -> int:
    """Delete finished jobs older than keep_hours and their files in `directory` (files the
    CLI wrote elsewhere are the operator's and stay). Returns how many; the caller commits."""
    now = now or utcnow()
    cutoff = now - timedelta(hours=keep_hours)
    jobs = session.scalars(
        select(ExportJob).where(ExportJob.state.in_(_FINISHED), ExportJob.finished_at < cutoff)
    ).all()
    for job in jobs:
        job_file(directory, job).unlink(missing_ok=True)
        session.delete(job)
    session.flush()
    return len(jobs)


# Recording ---------------------------------------------------------------------------------


def record_export(
    session: Session,
    actor,
    request: ExportRequest,
    result: ExportResult,
    *,
    export_id: str,
    bundle: bool,
) -> AuditEvent:
    """Append "export.create" to the trail (the caller commits)."""
    return audit.record(
        session,
        actor=actor,
        action="export.create",
        object_type="export",
        object_id=export_id,
        after={
            **request.to_dict(),
            "bundle": bundle,
            "file": result.path.name if result.path else None,
            "sha256": result.sha256,
            "size": result.size,
            "rows": result.rows,
            "missing": [m.evidence_id for m in result.missing],
            "audit_head": result.audit_head,
        },
    )


def record_download(session: Session, actor, job: ExportJob) -> AuditEvent:
    """Append "export.download" to the trail (the caller commits)."""
    return audit.record(
        session,
        actor=actor,
        action="export.download",
        object_type="export",
        object_id=job.public_id,
        after={"file": job.download_name, "sha256": job.file_sha256, "size": job.file_size},
    )
