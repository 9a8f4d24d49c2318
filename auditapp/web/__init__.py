"""The web layer: blueprints, request hooks (access, language, sessions), errors, headers."""

from __future__ import annotations

import io
import time
import uuid

from flask import (
    Flask,
    Request,
    current_app,
    g,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, logout_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from auditapp import access, database
from auditapp.errors import DomainError
from auditapp.extensions import db, login_manager
from auditapp.models import User
from auditapp.services import audit

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# Upload routes accept only a few form parts (SECURITY.md item 11).
SMALL_FORM_ENDPOINTS = {"evidence.upload", "training.complete"}


class _RawAdapter(io.RawIOBase):
    """Lets io.BufferedReader read from the WSGI input stream."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class AuditappRequest(Request):
    """Uploaded files stream into the evidence store's temporary area, hashed as they
    arrive, never held in memory; upload routes take only a few form parts."""

    def _get_file_stream(
        self, total_content_length, content_type, filename=None, content_length=None
    ):
        return current_app.extensions["evidence_store"].begin()

    def _get_stream_for_parsing(self):
        # The multipart parser reads 64 KiB at a time; gunicorn copies its whole buffer on
        # each small read. A 1 MiB buffer in between halves the CPU an upload costs
        # (measured in bench/upload.py).
        stream = super()._get_stream_for_parsing()
        if self.endpoint in SMALL_FORM_ENDPOINTS:
            return io.BufferedReader(_RawAdapter(stream), buffer_size=1024 * 1024)
        return stream

    @property
    def max_form_parts(self) -> int | None:
        if self.endpoint in SMALL_FORM_ENDPOINTS:
            return current_app.config["UPLOAD_MAX_FORM_PARTS"]
        return current_app.config["MAX_FORM_PARTS"]


# Where a person who must change their password may still go.
_PASSWORD_CHANGE_ALLOWED = {"auth.change_password", "auth.logout", "static", "main.set_language"}

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


def select_locale() -> str:
    """The UI language: the user's setting, else the chosen one, else the browser's."""
    from flask import current_app, has_request_context

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
    from flask import current_app

    return current_app.config["TIMEZONE"]


@login_manager.user_loader
def _load_user(identity: str) -> User | None:
    """Load the session's user unless deactivated or the session version has moved on."""
    try:
        user_id, version = (int(part) for part in identity.split(":"))
    except ValueError:
        return None
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.session_version != version:
        return None
    return user


def local_path(target: str | None) -> str:
    """A redirect target only if it is a path on this site (never another host)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def day_start(value: str, field: str, *, next_day: bool = False):
    """A typed date as the start of that day (or the next) in the configured zone."""
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo

    from flask import current_app

    from auditapp.services import inputs

    day = inputs.parse_date(value, field)
    if day is None:
        return None
    if next_day:
        day += timedelta(days=1)
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))


def today():
    """Today's date in the configured zone."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from flask import current_app

    return datetime.now(ZoneInfo(current_app.config["TIMEZONE"])).date()


def wants_json() -> bool:
    """API requests get JSON errors instead of pages."""
    return request.path.startswith("/api/")


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
        return _error_response(403, _("You do not have access to this page."))
    if rule.public:
        return None
    if not current_user.is_authenticated:
        if wants_json():
            return jsonify(error="authentication required"), 401
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    limit = time.time() - g_config("SESSION_ABSOLUTE_HOURS") * 3600
    if session.get("login_at", 0) < limit:
        logout_user()
        session.clear()
        return redirect(url_for("auth.login"))
    if current_user.must_change_password and request.endpoint not in _PASSWORD_CHANGE_ALLOWED:
        return redirect(url_for("auth.change_password"))
    if not access.allowed(current_user, rule):
        record_denial("access.denied", {"path": request.path, "method": request.method})
        return _error_response(403, _("You do not have access to this page."))
    return None


def g_config(key: str):
    """A configuration value of the running app."""
    from flask import current_app

    return current_app.config[key]


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


def _error_response(status: int, message: str):
    # Plain text from here on, whatever the message was built with: a lazy translation
    # counts as markup in Jinja and would carry interpolated input into the page unescaped.
    message = str(message)
    if wants_json():
        return jsonify(error=str(message)), status
    if request.url_rule is None and status == 400 and getattr(request, "routing_exception", None):
        # Refused before routing (an untrusted Host): no page can be built for it.
        return f"{status} {message}", status, {"Content-Type": "text/plain; charset=utf-8"}
    return render_template("error.html", status=status, message=message), status


def _default_message(status: int) -> str:
    from flask import current_app

    messages = {
        400: _("The request could not be understood."),
        403: _("You do not have access to this page."),
        404: _("The page or item was not found."),
        405: _("This action is not allowed here."),
        413: _(
            "The upload is too large. The limit is %(limit)s MiB.",
            limit=current_app.config["MAX_CONTENT_LENGTH"] // (1024 * 1024),
        ),
        429: _("Too many attempts. Please wait and try again."),
        500: _("Something went wrong on our side. The error was recorded."),
    }
    return messages.get(status, _("The request could not be completed."))


def _handle_http(exc: HTTPException):
    status = exc.code or 500
    if isinstance(exc, CSRFError):
        return _error_response(
            400,
            _("The form was missing its security token or it expired. Reload and try again."),
        )
    return _error_response(status, _default_message(status))


def _handle_domain(exc: DomainError):
    db.session.rollback()
    return _error_response(exc.status, exc.message or _default_message(exc.status))


def _handle_500(exc):
    db.session.rollback()
    from flask import current_app

    current_app.logger.exception("unhandled error")
    return _error_response(500, _default_message(500))


def init_app(app: Flask) -> None:
    """Register the blueprints, hooks, error handlers and template helpers."""
    from auditapp.web import filters
    from auditapp.web.admin import bp as admin_bp
    from auditapp.web.auditlog import bp as audit_bp
    from auditapp.web.auth import bp as auth_bp
    from auditapp.web.catalog import bp as catalog_bp
    from auditapp.web.checks import bp as checks_bp
    from auditapp.web.evidence import bp as evidence_bp
    from auditapp.web.exports import bp as exports_bp
    from auditapp.web.main import bp as main_bp
    from auditapp.web.training import bp as training_bp

    for bp in (
        main_bp,
        auth_bp,
        catalog_bp,
        checks_bp,
        evidence_bp,
        training_bp,
        exports_bp,
        admin_bp,
        audit_bp,
    ):
        app.register_blueprint(bp)
    app.request_class = AuditappRequest
    app.before_request(_before_request)
    app.after_request(_after_request)
    app.teardown_request(_teardown)
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(DomainError, _handle_domain)
    app.register_error_handler(Exception, _handle_500)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    filters.init_app(app)
