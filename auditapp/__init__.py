"""auditapp: the APPI safeguards (安全管理措置) as a living control catalog and audit trail."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask

__version__ = "0.1.0"

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app: configuration, extensions, engine set-up, web layer, CLI."""
    from auditapp import config, database, models, web  # noqa: F401 (models registers tables)
    from auditapp.extensions import babel, csrf, db, login_manager, migrate
    from auditapp.storage import LocalEvidenceStore

    instance = (test_config or {}).get("INSTANCE_PATH") or config.instance_path_from_env()
    app = Flask(
        __name__,
        instance_path=instance,
        instance_relative_config=True,
        template_folder="web/templates",
        static_folder="web/static",
    )
    config.load(app, test_config)
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    login_manager.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=web.select_locale, timezone_selector=web.select_timezone)
    with app.app_context():
        database.configure_engine(db.engine, app.config["SQLITE_BUSY_TIMEOUT_MS"])
    app.extensions["evidence_store"] = LocalEvidenceStore(app.config["EVIDENCE_PATH"])
    proxies = {k: int(app.config[f"PROXY_FIX_{k.upper()}"]) for k in ("x_for", "x_proto", "x_host")}
    if any(proxies.values()):
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, **proxies)
    web.init_app(app)
    # SCHEDULER_IN_PROCESS is honoured by auditapp/wsgi.py, the process that serves: not
    # here, where every CLI command and the development server's reloader would start one.
    if not app.debug and not app.testing:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    return app
