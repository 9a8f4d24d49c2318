"""The auditor's Export page: choose a scope, categories and language; the workbook (and
optionally the evidence bundle) is built in a background thread while a progress bar polls
its status; the finished file is offered for download for EXPORT_KEEP_HOURS."""

from __future__ import annotations

import threading

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from auditapp import database
from auditapp.errors import InvalidInput, NotFound
from auditapp.extensions import db
from auditapp.models import Role, User
from auditapp.services import audit, export
from auditapp.services.catalog import CATEGORIES
from auditapp.web.helpers import today

bp = Blueprint("exports", __name__, url_prefix="/exports")

MEDIA_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".zip": "application/zip",
}


def _directory():
    return export.exports_dir(current_app.instance_path)


def _keep_hours() -> float:
    return float(current_app.config.get("EXPORT_KEEP_HOURS", 24))


def _job_or_404(job_id: str) -> export.Job:
    """A job of the signed-in person (admins see all), or 404 for anyone else's."""
    job = export.load_job(_directory(), job_id)
    if job is None or (job.owner_id != current_user.id and not current_user.has_role(Role.ADMIN)):
        raise NotFound(_("No such export."))
    return job


def _render_index(errors: dict | None = None, form=None, status: int = 200):
    directory = _directory()
    export.purge_expired(directory, _keep_hours())
    config = current_app.config
    return render_template(
        "exports/index.html",
        errors=errors or {},
        form=form or {},
        chosen=set(form.getlist("category")) if form else set(),
        categories=CATEGORIES,
        years=export.fiscal_years(db.session, today(), int(config["FISCAL_YEAR_START_MONTH"])),
        jobs=export.list_jobs(directory, current_user.id),
        keep_hours=_keep_hours(),
        default_lang=str(request.accept_languages.best_match(config["LANGUAGES"]) or "ja"),
    ), status


@bp.get("/")
def export_list():
    """The export form and the person's recent exports (running, ready, failed)."""
    return _render_index()


@bp.post("/")
def create():
    """Check the request, take the one-export-at-a-time lock, start the job in the
    background and show its progress page."""
    form = request.form
    kind = form.get("scope_kind", "fy")
    try:
        req = export.make_request(
            fy=form.get("fy", "")[:20] if kind == "fy" else None,
            from_=form.get("from", "")[:20] if kind == "range" else None,
            to=form.get("to", "")[:20] if kind == "range" else None,
            categories=form.getlist("category")[:20],
            lang=form.get("lang", "")[:5],
            start_month=int(current_app.config["FISCAL_YEAR_START_MONTH"]),
            timezone=current_app.config["TIMEZONE"],
        )
    except InvalidInput as exc:
        return _render_index(exc.errors, form, 400)
    directory = _directory()
    label = audit.actor_label(current_user)
    lock = export.ExportLock(directory)
    try:
        lock.acquire(label)
    except export.ExportBusy as exc:
        return _render_index({"_": exc.message}, form, 409)
    try:
        job = export.create_job(
            directory,
            owner_id=current_user.id,
            owner_label=label,
            request=req,
            bundle=form.get("bundle") == "1",
        )
        _start(job, lock)
    except BaseException:
        lock.release()
        raise
    return redirect(url_for("exports.export_detail", job_id=job.id))


def _start(job: export.Job, lock: export.ExportLock) -> None:
    """Run the job in a thread with its own app context and session; it records the
    export in the audit trail and releases the lock when done."""
    app = current_app._get_current_object()
    meta = dict(db.session.info.get(audit.META_KEY) or {})
    user_id = current_user.id

    def work():
        with app.app_context():
            directory = export.exports_dir(app.instance_path)
            db.session.info[audit.META_KEY] = meta
            try:
                result = export.run_job(
                    db.session, app.extensions["evidence_store"], directory, job
                )
                with database.writing():
                    actor = db.session.get(User, user_id) or job.owner_label
                    export.record_export(
                        db.session,
                        actor,
                        job.export_request,
                        result,
                        export_id=job.id,
                        bundle=job.bundle,
                    )
                    db.session.commit()
                export.finish_job(directory, job, result)
            except Exception:
                db.session.rollback()
                app.logger.exception("export %s failed", job.id)
                export.fail_job(directory, job, "error")
            finally:
                lock.release()

    threading.Thread(target=work, name=f"export-{job.id[:8]}", daemon=True).start()


@bp.get("/<job_id>")
def export_detail(job_id: str):
    """One export: its progress bar while it runs, then its download link."""
    job = _job_or_404(job_id)
    return render_template(
        "exports/job.html", job=job, categories=CATEGORIES, keep_hours=_keep_hours()
    )


@bp.get("/<job_id>/status")
def status(job_id: str):
    """The job's state as JSON, polled by exports.js."""
    job = _job_or_404(job_id)
    ready = job.state == "done" and export.job_file(_directory(), job).is_file()
    return jsonify(
        state=job.state,
        percent=job.percent,
        done=job.done,
        total=job.total,
        missing=len(job.missing),
        download_url=url_for("exports.download", job_id=job.id) if ready else None,
    )


@bp.get("/<job_id>/download")
def download(job_id: str):
    """The finished workbook or bundle as an attachment (recorded in the audit trail)."""
    job = _job_or_404(job_id)
    path = export.job_file(_directory(), job)
    if job.state != "done" or not path.is_file():
        raise NotFound(_("This export is not available: still running, failed or expired."))
    db.session.rollback()
    with database.writing():
        export.record_download(db.session, current_user, job)
        db.session.commit()
    # Signed-in responses are sent with Cache-Control: no-store (web/__init__.py).
    return send_file(
        path,
        mimetype=MEDIA_TYPES[job.suffix],
        as_attachment=True,
        download_name=job.download_name,
        max_age=0,
    )
