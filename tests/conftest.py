"""Test set-up: a fresh app per test on tmp_path (SQLite) or on its own PostgreSQL schema."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa
from flask.testing import FlaskCliRunner

from auditapp import create_app
from auditapp.cli import cli as auditapp_cli
from auditapp.extensions import db
from tests.factories import PASSWORD, make_user

PG_URL = os.environ.get("AUDITAPP_TEST_DATABASE_URL", "")


class AuditappCliRunner(FlaskCliRunner):
    """Invokes the `auditapp` command group (not only app.cli) against the test app."""

    def invoke(self, cli=None, args=None, **kwargs):
        return super().invoke(cli or auditapp_cli, args, **kwargs)


def pytest_collection_modifyitems(config, items):
    """Skip suites whose service is missing; under CI (AUDITAPP_REQUIRE_*) that is an error."""
    has_browser = os.path.exists("/usr/bin/chromium")
    wants_browser = any("browser" in item.keywords for item in items)
    if wants_browser and not has_browser and os.environ.get("AUDITAPP_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError("AUDITAPP_REQUIRE_BROWSER=1 but /usr/bin/chromium is missing")
    for item in items:
        if "postgres" in item.keywords and not PG_URL:
            item.add_marker(
                pytest.mark.skip(reason="PostgreSQL suite: set AUDITAPP_TEST_DATABASE_URL")
            )
        if "browser" in item.keywords and not has_browser:
            item.add_marker(
                pytest.mark.skip(reason="browser suite: /usr/bin/chromium missing (apt chromium)")
            )


@pytest.fixture
def database_url(tmp_path):
    """A database of this test's own: a PostgreSQL schema when configured, else SQLite."""
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'test.db'}", {}
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    yield PG_URL, {"connect_args": {"options": f"-csearch_path={schema}"}}
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def make_app(tmp_path, database_url):
    """Build apps on this test's database; the schema is created from the models."""
    url, engine_options = database_url
    apps = []

    def build(**overrides):
        config = {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "DATABASE_URL": url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
        } | overrides
        app = create_app(config)
        app.test_cli_runner_class = AuditappCliRunner
        with app.app_context():
            db.create_all()
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(make_app):
    """The app under test."""
    return make_app()


@pytest.fixture
def session(app):
    """The database session inside an app context."""
    with app.app_context():
        yield db.session


@pytest.fixture
def client(app):
    """A test client (CSRF checks on, as in production)."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner for the app."""
    return app.test_cli_runner()


def csrf_token(client, path="/login") -> str:
    """Fetch a page and return the CSRF token in its form."""
    import re

    html = client.get(path, follow_redirects=True).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no csrf token on {path}"
    return match.group(1)


def login(client, email: str, password: str = PASSWORD):
    """Sign in through the login form; returns the response."""
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def post(client, path: str, data: dict | None = None, *, token_from: str | None = None, **kw):
    """POST a form with a valid CSRF token taken from a page of this session."""
    token = csrf_token(client, token_from or "/")
    return client.post(path, data={**(data or {}), "csrf_token": token}, **kw)


@pytest.fixture
def users(app):
    """One signed-in-able person per role (and their emails), committed."""
    with app.app_context():
        people = {
            role: make_user(db.session, roles=[role], email=f"{role}@example.jp")
            for role in ("admin", "manager", "employee", "auditor")
        }
        db.session.commit()
        return {role: u.email for role, u in people.items()}


@pytest.fixture
def as_role(app, users):
    """A client signed in with the given role."""

    def signed_in(role: str):
        client = app.test_client()
        response = login(client, users[role])
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return signed_in
