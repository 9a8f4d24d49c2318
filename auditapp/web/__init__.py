"""The web layer: one blueprint per area, wired with the request, hooks and error modules."""

from __future__ import annotations

from flask import Flask

from auditapp.web.hooks import select_locale, select_timezone

__all__ = ["init_app", "select_locale", "select_timezone"]


def init_app(app: Flask) -> None:
    """Register the request class, hooks, error handlers, template helpers and blueprints."""
    from auditapp.web import errors, filters, hooks, request
    from auditapp.web.admin import bp as admin_bp
    from auditapp.web.audit import bp as audit_bp
    from auditapp.web.auth import bp as auth_bp
    from auditapp.web.catalog import bp as catalog_bp
    from auditapp.web.checks import bp as checks_bp
    from auditapp.web.evidence import bp as evidence_bp
    from auditapp.web.exports import bp as exports_bp
    from auditapp.web.main import bp as main_bp
    from auditapp.web.training import bp as training_bp

    request.init_app(app)
    hooks.init_app(app)
    errors.init_app(app)
    filters.init_app(app)
    app.register_blueprint(main_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(catalog_bp)
    app.register_blueprint(checks_bp)
    app.register_blueprint(evidence_bp)
    app.register_blueprint(training_bp)
    app.register_blueprint(exports_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(audit_bp)
