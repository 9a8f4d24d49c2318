"""Request hooks: access check, language and zone, the signed-in user, response headers."""

from __future__ import annotations

import uuid

from flask import (
    Flask,
    current_app,
    g,
    has_request_context,
    jsonify,
    redirect,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.orm import Session

from auditapp import access, database
from auditapp.extensions import db, login_manager
from auditapp.models import User
from auditapp.services import audit, sessions
from auditapp.web.errors import error_response
from auditapp.web.helpers import session_limits, wants_json

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

# Where a person who must change their password may still go.
_PASSWORD_CHANGE_ALLOWED = {"auth.change_password", "auth.logout", "static", "main.set_language"}

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def select_locale() -> str:
    """The UI language: the user's setting, else the chosen one, else the browser's."""
    if not has_request_context():
        return "en"  # command line and scheduled jobs speak English
    languages = current_app.config["LANGUAGES"]
    user = current_user if current_user and current_user.is_authenticated else None
    if user is not None and user.language in languages:
        return user.language
    if session.get("lang") in languages:
        return session["lang"]
    return request.accept_languages.best_match(languages) or current_app.config["DEFAULT_LANGUAGE"]


def select_timezone() -> str:
    """Times are shown in the configured zone (stored in UTC)."""
    return current_app.config["TIMEZONE"]


def _load_user(identity: str) -> User | None:
    """The signed-in person, while the cookie's session is open on the server (not ended,
    idle or too old, the person active) and its session version current (a second guard)."""
    try:
        user_id, version = (int(part) for part in identity.split(":"))
    except ValueError:
        return None
    found = sessions.current(db.session, session.get("sid"), session_limits())
    if found is None or found.user.id != user_id or found.user.session_version != version:
        return None
    if found.needs_touch():
        _touch(found.row_id)
    return found.user


def _touch(row_id: str) -> None:
    """Move the session's last-seen time on (at most once a minute)."""
    if db.engine.dialect.name == "sqlite" and database.intends_to_write():
        # This request already holds SQLite's one write lock: a second transaction would
        # wait for it. The touch commits with the request (lost if it fails, retried next).
        sessions.touch(db.session, row_id)
        return
    # Otherwise in a short transaction of its own: the request may only read, or roll back.
    with database.writing(), Session(db.engine) as own:
        sessions.touch(own, row_id)
        own.commit()


def record_denial(action: str, detail: dict) -> None:
    """Record an access denial in the audit trail in its own transaction."""
    db.session.rollback()
    actor = current_user if current_user.is_authenticated else "anonymous"
    with database.writing():
        audit.record(
            db.session,
            actor=actor,
            action=action,
            object_type="endpoint",
            object_id=request.endpoint,
            after=detail,
        )
        db.session.commit()


def _before_request():
    # Reads start deferred so they never wait for writers; anything else may write.
    database.set_write_intent(request.method not in SAFE_METHODS)
    g.request_id = uuid.uuid4().hex
    db.session.info[audit.META_KEY] = {
        "client_addr": request.remote_addr,
        "request_id": g.request_id,
    }
    if request.endpoint is None:
        return None  # 404/405 follow
    rule = access.rule_for(request.endpoint)
    if rule is None:
        # An endpoint nobody declared: refuse rather than guess.
        return error_response(403, _("You do not have access to this page."))
    if rule.public:
        return None
    if not current_user.is_authenticated:
        if wants_json():
            return jsonify(error="authentication required"), 401
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    if current_user.must_change_password and request.endpoint not in _PASSWORD_CHANGE_ALLOWED:
        return redirect(url_for("auth.change_password"))
    if not access.allowed(current_user, rule):
        record_denial("access.denied", {"path": request.path, "method": request.method})
        return error_response(403, _("You do not have access to this page."))
    return None


def _after_request(response):
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    if getattr(g, "request_id", None):
        response.headers["X-Request-ID"] = g.request_id
    if current_user and current_user.is_authenticated:
        response.headers["Cache-Control"] = "no-store"
    return response


def _teardown(exc):
    database.set_write_intent(True)


def init_app(app: Flask) -> None:
    """Register the request hooks and the user loader."""
    app.before_request(_before_request)
    app.after_request(_after_request)
    app.teardown_request(_teardown)
    login_manager.user_loader(_load_user)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
