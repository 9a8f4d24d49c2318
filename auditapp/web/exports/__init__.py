"""The auditor's Export page: choose a scope, categories and language; the request is
queued as an export job, run by the scheduler process (never inside a web worker) while
a progress bar polls its row; the finished file is offered for download for
EXPORT_KEEP_HOURS."""

from __future__ import annotations

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
from auditapp.errors import Conflict, InvalidInput, NotFound
from auditapp.extensions import db
from auditapp.models import ExportState
from auditapp.services import export
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


def _render_index(errors: dict | None = None, form=None, status: int = 200):
    config = current_app.config
    return render_template(
        "exports/index.html",
        errors=errors or {},
        form=form or {},
        chosen=set(form.getlist("category")) if form else set(),
        categories=CATEGORIES,
        years=export.fiscal_years(db.session, today(), int(config["FISCAL_YEAR_START_MONTH"])),
        jobs=export.list_jobs(db.session, current_user.id),
        keep_hours=_keep_hours(),
        default_lang=str(request.accept_languages.best_match(config["LANGUAGES"]) or "ja"),
    ), status


@bp.get("/")
def export_list():
    """The export form and the person's recent exports (waiting, running, ready, failed)."""
    return _render_index()


@bp.post("/")
def create():
    """Check the request, queue it and show its progress page (the scheduler runs it)."""
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
        job = export.enqueue(
            db.session, owner=current_user, request=req, bundle=form.get("bundle") == "1"
        )
    except InvalidInput as exc:
        db.session.rollback()
        return _render_index(exc.errors, form, 400)
    except Conflict as exc:
        db.session.rollback()
        return _render_index({"_": exc.message}, form, 409)
    public_id = job.public_id
    db.session.commit()
    return redirect(url_for("exports.export_detail", job_id=public_id))


@bp.get("/<job_id>")
def export_detail(job_id: str):
    """One export: what it waits for, its progress bar while it runs, then its download."""
    job = export.get_job(db.session, current_user, job_id)
    return render_template(
        "exports/job.html",
        job=job,
        waiting=export.waiting_for(db.session, job),
        categories=CATEGORIES,
        keep_hours=_keep_hours(),
    )


@bp.get("/<job_id>/status")
def status(job_id: str):
    """The job's state as JSON from its row, polled by exports.js."""
    job = export.get_job(db.session, current_user, job_id)
    ready = job.state == ExportState.DONE and export.job_file(_directory(), job).is_file()
    waiting = export.waiting_for(db.session, job)
    return jsonify(
        state=job.state,
        percent=job.percent,
        done=job.done,
        total=job.total,
        missing=len(job.missing),
        waiting=str(waiting) if waiting is not None else None,
        download_url=url_for("exports.download", job_id=job.public_id) if ready else None,
    )


@bp.get("/<job_id>/download")
def download(job_id: str):
    """The finished workbook or bundle as an attachment (recorded in the audit trail)."""
    job = export.get_job(db.session, current_user, job_id)
    path = export.job_file(_directory(), job)
    if job.state != ExportState.DONE or not path.is_file():
        raise NotFound(_("This export is not available: still running, failed or expired."))
    name, suffix = job.download_name, job.suffix
    db.session.rollback()
    with database.writing():
        export.record_download(db.session, current_user, job)
        db.session.commit()
    # Signed-in responses are sent with Cache-Control: no-store (web/__init__.py).
    return send_file(
        path,
        mimetype=MEDIA_TYPES[suffix],
        as_attachment=True,
        download_name=name,
        max_age=0,
    )
