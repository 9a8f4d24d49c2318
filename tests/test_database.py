"""Engine set-up (SECURITY.md 17), migrations matching the models, the audit chain under load."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade
from sqlalchemy import text

from auditapp import create_app
from auditapp.extensions import db
from auditapp.services import audit
from tests.conftest import PG_URL


@pytest.mark.skipif(bool(PG_URL), reason="SQLite pragmas (the suite runs on PostgreSQL)")
def test_sqlite_pragmas(session):
    """SQLite runs in WAL with synchronous=NORMAL, a busy timeout and foreign keys on."""
    assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    assert session.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    assert session.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
    assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_migrations_build_the_models_schema(tmp_path, database_url):
    """`auditapp init`'s migrations create exactly the schema the models declare."""
    url, options = database_url
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "m"),
            "DATABASE_URL": url,
            "SQLALCHEMY_ENGINE_OPTIONS": options,
        }
    )
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
        db.engine.dispose()
    assert diff == []


@pytest.mark.skipif(bool(PG_URL), reason="compares SQLite's stored CREATE statements")
def test_migrations_and_models_agree_column_for_column(tmp_path):
    """The tables the models create and the migrations create are the same, columns in the
    same order (a restore compares a backup's schema with the migrations' exactly)."""
    import sqlite3

    from auditapp.services.ops import schema

    def build(name: str, migrate: bool) -> dict:
        path = tmp_path / f"{name}.db"
        app = create_app(
            {
                "TESTING": True,
                "INSTANCE_PATH": str(tmp_path / name),
                "DATABASE_URL": f"sqlite:///{path}",
            }
        )
        with app.app_context():
            upgrade() if migrate else db.create_all()
            db.engine.dispose()
        with sqlite3.connect(path) as conn:
            rows = conn.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                " AND name NOT IN ('alembic_version') AND name NOT LIKE 'sqlite_%'"
            ).fetchall()
        return {n: schema.normalize_sql(sql) for n, sql in rows}

    models, migrations = build("models", False), build("migrations", True)
    assert {n for n in models if models[n] != migrations.get(n)} == set()


def test_concurrent_writers_keep_the_chain(make_app):
    """Writers in several threads append to the audit chain without lock errors or forks."""
    app = make_app()
    errors: list[Exception] = []

    def writer(n: int):
        with app.app_context():
            try:
                for i in range(15):
                    audit.head(db.session)  # read first, then write: the classic lock trap
                    audit.record(
                        db.session,
                        actor=f"t{n}",
                        action="test.write",
                        object_type="test",
                        object_id=i,
                    )
                    db.session.commit()
            except Exception as exc:  # noqa: BLE001 (collected and asserted below)
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context():
        report = audit.verify(db.session)
    assert report.ok and report.count == 60
