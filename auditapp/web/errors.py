"""Error pages: domain errors, HTTP errors and the unexpected, as pages (or JSON under /api/)."""

from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from auditapp.errors import DomainError
from auditapp.extensions import db
from auditapp.web.helpers import wants_json


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


def _handle_500(exc):
    db.session.rollback()
    current_app.logger.exception("unhandled error")
    return error_response(500, default_message(500))


def init_app(app: Flask) -> None:
    """Register the error handlers."""
    app.register_error_handler(HTTPException, _handle_http)
    app.register_error_handler(DomainError, _handle_domain)
    app.register_error_handler(Exception, _handle_500)
