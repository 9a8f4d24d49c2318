"""Evidence: the library, uploads (streamed), a file's page, downloads, previews, withdrawal."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wsgi import wrap_file

from auditapp import access, database
from auditapp.errors import InvalidInput, NotFound
from auditapp.extensions import db
from auditapp.services import evidence, filetypes, inputs
from auditapp.web.helpers import date_range, id_arg, local_path, today

bp = Blueprint("evidence", __name__, url_prefix="/evidence")


def _store():
    return current_app.extensions["evidence_store"]


@bp.get("/")
def evidence_list():
    """Evidence the user may see: search, filters (type, uploader, date, link, expiring)."""
    args = request.args
    errors: dict = {}
    flt = evidence.EvidenceFilter(
        q=args.get("q", "")[:100],
        media_type=args.get("type", "")
        if args.get("type") in {t.media_type for t in filetypes.TYPES}
        else "",
        uploader_id=id_arg(args.get("uploader")),
        object_type=args.get("object_type", "")
        if args.get("object_type") in evidence.link_types()
        else "",
        object_id=args.get("object_id", "")[:40],
        expiring_within_days=30 if args.get("expiring") == "1" else None,
        include_withdrawn=args.get("withdrawn") == "1" and access.sees_all_evidence(current_user),
        include_old_versions=args.get("versions") == "1",
    )
    flt.since, flt.until = date_range(args, errors)
    page = inputs.page_number(args.get("page"))
    size = current_app.config["PAGE_SIZE"]
    rows, total = (
        evidence.search(db.session, current_user, flt, page, size, today())
        if not errors
        else ([], 0)
    )
    return render_template(
        "evidence/library.html",
        rows=rows,
        total=total,
        page=page,
        page_size=size,
        args=args,
        errors=errors,
        types=filetypes.TYPES,
        link_types=evidence.link_types(),
        uploaders=evidence.uploaders(db.session),
        can_filter_withdrawn=access.sees_all_evidence(current_user),
    ), (400 if errors else 200)


def _answer_error(message, errors: dict, back: str, status: int):
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error=str(message), errors={k: str(v) for k, v in errors.items()}), status
    for value in errors.values() or [message]:
        flash(str(value), "error")
    return redirect(back)


@bp.post("/upload")
def upload():
    """Store an uploaded file as evidence linked to an object (or as a new version).

    The body was streamed into the store's temporary area while it arrived; here the
    request is checked, then evidence.store_upload verifies the bytes' type, commits them
    and writes the rows.
    """
    form = request.form
    back = local_path(form.get("next"))
    file = request.files.get("file")
    supersedes = id_arg(form.get("supersedes"))
    try:
        if file is None or not file.filename:
            raise inputs.fail("file", _("choose a file to upload"))
        plan = evidence.plan_upload(
            db.session,
            current_user,
            links=form.getlist("link"),
            description=form.get("description"),
            valid_until=form.get("valid_until"),
            supersedes_id=supersedes,
            today=today(),
        )
        item = evidence.store_upload(
            db.session,
            _store(),
            current_user,
            plan,
            file.stream,
            file.filename,
            today=today(),
            retention_years=current_app.config["EVIDENCE_RETENTION_YEARS"],
        )
        db.session.commit()
    except InvalidInput as exc:
        db.session.rollback()
        return _answer_error(exc.message, exc.errors, back, 400)
    except NotFound as exc:
        db.session.rollback()
        return _answer_error(exc.message, {}, back, 404)
    url = url_for("evidence.evidence_detail", evidence_id=item.id)
    if request.accept_mimetypes.best == "application/json":
        return jsonify(id=item.id, sha256=item.sha256, url=url, back=back), 201
    flash(_("Uploaded %(name)s.", name=item.filename), "success")
    return redirect(back if form.get("next") else url)


@bp.get("/<int:evidence_id>")
def evidence_detail(evidence_id: int):
    """One evidence item: metadata, hash, links, versions; upload a new version; withdraw."""
    item = evidence.get_visible(db.session, current_user, evidence_id)
    targets = list(evidence.link_targets(db.session, item))
    return render_template(
        "evidence/detail.html",
        item=item,
        targets=targets,
        versions=evidence.history(db.session, item),
        can_replace=item.status == "active"
        and item.superseded_at is None
        and all(access.may_attach(current_user, t) for t in targets),
        locked=[t for t in targets if t.locked],
        can_withdraw=access.may_withdraw_evidence(current_user, item),
        can_see_trail=access.oversees_all(current_user),
    )


def _send(item, *, inline: bool):
    """Stream the bytes (never read whole), with ranges, as an attachment unless inline."""
    db.session.rollback()
    with database.writing():
        evidence.record_download(db.session, current_user, item, inline=inline)
        db.session.commit()
    store = _store()
    size = store.size(item.sha256)
    response = current_app.response_class(
        wrap_file(request.environ, store.open(item.sha256)),
        mimetype=item.media_type,
        direct_passthrough=True,
    )
    response.content_length = size
    simple = unicodedata.normalize("NFKD", item.filename).encode("ascii", "ignore").decode()
    response.headers.set(
        "Content-Disposition",
        "inline" if inline else "attachment",
        filename=simple or "evidence",
        **{"filename*": "UTF-8''" + quote(item.filename, safe="")},
    )
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    response.set_etag(item.sha256)
    return response.make_conditional(request.environ, accept_ranges=True, complete_length=size)


@bp.get("/<int:evidence_id>/download")
def download(evidence_id: int):
    """Download the file as an attachment (authorized per item, recorded in the trail)."""
    item = evidence.get_visible(db.session, current_user, evidence_id)
    if item.status == "purged":
        raise NotFound(_("The file was purged at the end of its retention."))
    return _send(item, inline=False)


@bp.get("/<int:evidence_id>/preview")
def preview(evidence_id: int):
    """Show an image inline; other types are only downloaded."""
    item = evidence.get_visible(db.session, current_user, evidence_id)
    if not item.is_image or item.status == "purged":
        raise NotFound(_("No preview for this file."))
    return _send(item, inline=True)


@bp.post("/<int:evidence_id>/withdraw")
def withdraw(evidence_id: int):
    """Admin: withdraw an item with a reason (kept until retention ends, then purged)."""
    item = evidence.get_visible(db.session, current_user, evidence_id)
    try:
        evidence.withdraw(db.session, current_user, item, request.form.get("reason"))
    except InvalidInput as exc:
        db.session.rollback()
        for value in exc.errors.values() or [exc.message]:
            flash(str(value), "error")
        return redirect(url_for("evidence.evidence_detail", evidence_id=evidence_id))
    db.session.commit()
    flash(_("The evidence was withdrawn."), "success")
    return redirect(url_for("evidence.evidence_detail", evidence_id=evidence_id))
