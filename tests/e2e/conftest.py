"""Browser suite: the app served by a real WSGI server on 127.0.0.1, driven by Chromium."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from auditapp.extensions import db
from auditapp.services import catalog
from tests.factories import make_department, make_user

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.fixture
def live_app(make_app):
    """The app with an admin and a department, served on a free port; yields its base URL."""
    app = make_app()
    with app.app_context():
        make_department(db.session, code="SALES", name="営業部")
        make_user(db.session, roles=["admin"], email="admin@example.jp", name="管理 花子")
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        db.session.commit()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


@pytest.fixture
def page():
    """A Chromium page (Playwright with Debian's chromium, no downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(locale="en-US", viewport={"width": 1280, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()
