"""Backups for the ops and restore tests: filled apps, restore targets, and helpers that
craft backups as an attacker would (edit the dump, the manifest, the folder; re-sign a
manifest with a key, to reach the checks behind the signature)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path

import sqlalchemy as sa
from flask_migrate import stamp
from sqlalchemy import text

from auditapp import MIGRATIONS_DIR
from auditapp.extensions import db
from auditapp.services import audit, catalog, ops
from auditapp.services.ops.files import sign_manifest
from tests.conftest import PG_URL
from tests.factories import make_check_and_finding, make_department, make_evidence, make_user


def fill(app) -> None:
    """Data in most tables: catalog, people, evidence, a check with a finding, events;
    the schema stamped at the head revision as `auditapp init` leaves it."""
    with app.app_context():
        stamp(directory=MIGRATIONS_DIR)
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        department = make_department(db.session)
        for _ in range(3):
            make_user(db.session, department=department)
        for i in range(3):
            make_evidence(app, db.session, data=b"%PDF-1.4\n" + f"evidence {i}\n".encode())
        make_check_and_finding(db.session, "ORG-01")
        audit.record(db.session, actor="test", action="test.note", object_type="test", after=[1])
        db.session.commit()


def state(app) -> dict:
    """Row counts per table, the audit-chain head, and each evidence file's verification."""
    with app.app_context():
        store = app.extensions["evidence_store"]
        state = {
            "counts": ops.row_counts(db.session),
            "head": audit.head(db.session),
            "evidence": {sha: store.verify(sha) for sha in store.iter_hashes()},
        }
        db.session.rollback()
    return state


def backup(app, out: Path):
    return app.test_cli_runner().invoke(args=["backup", "--out", str(out)])


def restore(app, folder: Path, *args: str):
    return app.test_cli_runner().invoke(args=["restore", str(folder), *args])


def restore_targets(make_app, tmp_path):
    """Builds a fresh app with an empty database and evidence folder: a new instance folder
    and SQLite file, or a new PostgreSQL database holding a new schema (pg_restore cannot
    rename the dumped schema inside the database that still holds it). The audit key of
    the test's first app is copied into it, as the README's restore steps say (unless
    `with_key=False`)."""
    databases, apps = [], []

    def build(with_key: bool = True):
        instance = tmp_path / f"restored-{len(apps)}"
        key = tmp_path / "instance" / "audit.key"
        if with_key and key.exists():
            instance.mkdir()
            shutil.copy2(key, instance / "audit.key")
        if not PG_URL:
            app = make_app(
                INSTANCE_PATH=str(instance),
                DATABASE_URL=f"sqlite:///{instance / 'auditapp.db'}",
                SQLALCHEMY_ENGINE_OPTIONS={},
            )
        else:
            name, schema = f"r_{uuid.uuid4().hex[:12]}", f"t_{uuid.uuid4().hex[:12]}"
            admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            databases.append(name)
            url = sa.make_url(PG_URL).set(database=name)
            engine = sa.create_engine(url)
            with engine.begin() as conn:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            engine.dispose()
            app = make_app(
                INSTANCE_PATH=str(instance),
                DATABASE_URL=url.render_as_string(hide_password=False),
                SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"options": f"-csearch_path={schema}"}},
            )
        apps.append(app)
        return app

    yield build
    for app in apps:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if databases:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in databases:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def read_manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def write_manifest(folder: Path, manifest: dict) -> None:
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2))


def resign(folder: Path, key_file: Path, **changes) -> dict:
    """Apply `changes` to the manifest, record the dump's new hash and size, and sign it
    again with the key in `key_file` (someone holding the instance's key)."""
    manifest = read_manifest(folder) | changes
    dump = folder / manifest["database"]["file"]
    data = dump.read_bytes()
    manifest["database"] = manifest["database"] | {
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    keys = audit.Anchor(key_file, key_file.with_name("unused.jsonl")).keys()
    signed = sign_manifest(manifest, keys)
    write_manifest(folder, signed)
    return signed


def edit_sqlite_dump(folder: Path, *statements: str) -> None:
    """Run SQL on the backup's SQLite copy (a trigger, a view, an edited row ...)."""
    with closing(sqlite3.connect(folder / "database.sqlite3")) as conn:
        for statement in statements:
            conn.execute(statement)
        conn.commit()
