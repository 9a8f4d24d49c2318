"""Error pages: domain errors, HTTP errors and the unexpected, as pages (or JSON under /api/)."""

from __future__ import annotations

import errno

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from auditapp.errors import DomainError
from auditapp.extensions import db
from auditapp.web.helpers import wants_json

# "No space left" and "quota exceeded" from the OS; SQLite's SQLITE_FULL; PostgreSQL's
# disk_full SQLSTATE.
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_SQLITE_FULL = 13
_PG_DISK_FULL = "53100"


def error_response(status: int, message: str):
    """The error page (or JSON body) for a status and a message."""
    # Plain text from here on, whatever the message was built with: a lazy translation
    # counts as markup in Jinja and would carry interpolated input into the page unescaped.
    message = str(message)
    if wants_json():
        return jsonify(error=message), status
    if request.url_rule is None and status == 400 and getattr(request, "routing_exception", None):
        # Refused before routing (an untrusted Host): no page can be built for it.
        return f"{status} {message}", status, {"Content-Type": "text/plain; charset=utf-8"}
    return render_template("error.html", status=status, message=message), status


def default_message(status: int) -> str:
    """What an error page says when nothing more specific is known."""
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
        507: _("The server's disk is full; nothing was saved. Tell your administrator."),
    }
    return messages.get(status, _("The request could not be completed."))


def _handle_http(exc: HTTPException):
    status = exc.code or 500
    if isinstance(exc, CSRFError):
        return error_response(
            400,
            _("The form was missing its security token or it expired. Reload and try again."),
        )
    return error_response(status, default_message(status))


def _handle_domain(exc: DomainError):
    db.session.rollback()
    return error_response(exc.status, exc.message or default_message(exc.status))


def is_disk_full(exc: BaseException | None) -> bool:
    """True when the error, or one that caused it, says the disk or the quota is full:
    an OSError from a file write, or the database's own "disk full" wrapped by SQLAlchemy."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
            return True
        orig = getattr(exc, "orig", None)  # the DBAPI error inside a SQLAlchemy one
        if getattr(orig, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        if getattr(orig, "sqlstate", None) == _PG_DISK_FULL:
            return True
        exc = orig if isinstance(orig, BaseException) else (exc.__cause__ or exc.__context__)
    return False


def _handle_500(exc):
    db.session.rollback()
    if is_disk_full(exc):
        # Not a bug to trace: say what happened, to the person and in the log.
        current_app.logger.error("disk full, request refused (507): %s", exc)
        return error_response(507, default_message(507))
    current_app.logger.exception("unhandled error")
    return error_response(500, default_message(500))


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(DomainError, _handle_domain)
    app.register_error_handler(Exception, _handle_500)
