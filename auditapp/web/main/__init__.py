"""Home page, health check and the language switch."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from auditapp import __version__, database
from auditapp.errors import InvalidInput
from auditapp.extensions import db
from auditapp.services import dashboard, users
from auditapp.web.helpers import local_path, today

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    """Home: what this person can do and the organization's current state."""
    return render_template(
        "main/index.html",
        summary=dashboard.home_summary(db.session, current_user),
        attention=dashboard.attention(db.session, current_user, today()),
        today=today(),
    )


@bp.get("/healthz")
def healthz():
    """Health check for load balancers: database reachable, migration level, version."""
    try:
        db.session.execute(text("SELECT 1"))
        revision = database.migration_revision(db.session)
        ok = True
    except SQLAlchemyError:
        revision, ok = None, False
    body = {
        "status": "ok" if ok else "error",
        "database": ok,
        "migration": revision,
        "version": __version__,
    }
    return jsonify(body), 200 if ok else 503


@bp.post("/language")
def set_language():
    """Switch the UI language; signed-in people keep it as their setting."""
    lang = request.form.get("lang", "")
    if lang not in current_app.config["LANGUAGES"]:
        raise InvalidInput(_("Unknown language."))
    session["lang"] = lang
    if current_user.is_authenticated:
        users.set_language(db.session, current_user, lang)
        db.session.commit()
    return redirect(local_path(request.form.get("next")))
