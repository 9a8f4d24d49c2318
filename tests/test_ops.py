"""`auditapp backup | restore | doctor` (services.ops), on SQLite or on PostgreSQL when
AUDITAPP_TEST_DATABASE_URL is set."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import select, text

from auditapp import MIGRATIONS_DIR, scheduler
from auditapp.extensions import db
from auditapp.models import AuditEvent, Evidence
from auditapp.services import audit, evidence, ops
from tests.conftest import PG_URL
from tests.factories import make_user
from tests.security import crafted
from tests.security.crafted import backup as _backup
from tests.security.crafted import fill as _fill
from tests.security.crafted import restore as _restore
from tests.security.crafted import state as _state

STRONG_KEY = "k" * 64


def _head_revision() -> str:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    return ScriptDirectory.from_config(cfg).get_current_head()


@pytest.fixture
def restore_target(make_app, tmp_path):
    """Builds fresh apps to restore into (see crafted.restore_targets)."""
    yield from crafted.restore_targets(make_app, tmp_path)


def _doctor(app, *args: str):
    return app.test_cli_runner().invoke(args=["doctor", *args])


def _line(output: str, name: str) -> str:
    """The doctor's report line for one check."""
    return next(line for line in output.splitlines() if line[6:].startswith(name + " "))


# Backup and restore -------------------------------------------------------------------


def test_round_trip_loses_nothing(app, restore_target, tmp_path):
    """A backup restored into a fresh instance has the same row count in every table, the
    same audit-chain head and every evidence file intact; the chain verifies and new rows
    can be added (sequences restored)."""
    _fill(app)
    before = _state(app)
    out = tmp_path / "backup"

    result = _backup(app, out)

    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["database"]["kind"] == ("postgresql" if PG_URL else "sqlite")
    assert manifest["migration_revision"] == _head_revision()
    assert manifest["row_counts"] == before["counts"]
    assert manifest["audit_chain"]["head"] == before["head"]
    assert manifest["audit_chain"]["entries"] == before["counts"]["audit_event"]
    assert {e["sha256"] for e in manifest["evidence"]} == set(before["evidence"])
    assert len(before["evidence"]) == 3 and before["counts"]["user_account"] >= 4
    with app.app_context():  # the backup itself is recorded, chained onto the copied head
        last = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
        assert last.action == "backup.create" and last.prev_hash == before["head"]
        assert last.client_addr == "cli" and last.actor_label.startswith("cli:")

    target = restore_target()
    result = _restore(target, out)

    assert result.exit_code == 0, result.output
    assert "verified" in result.output
    assert _state(target) == before
    with target.app_context():
        assert audit.verify(db.session).ok
        assert evidence.verify(db.session, target.extensions["evidence_store"]).ok
        make_user(db.session)  # ids continue after the restored ones
        db.session.commit()


def test_backup_refuses_non_empty_folder(app, tmp_path):
    """Backing up into a folder that holds anything is refused and the folder untouched."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")

    result = _backup(app, out)

    assert result.exit_code == 1
    assert "not empty" in result.output
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_backup_with_a_missing_evidence_file_keeps_nothing(app, tmp_path):
    """A file missing from the store fails the backup naming it; the folder is left empty
    and no backup is recorded."""
    _fill(app)
    with app.app_context():
        sha = db.session.scalars(select(Evidence.sha256)).first()
        events = db.session.query(AuditEvent).count()
        db.session.rollback()
    Path(app.config["EVIDENCE_PATH"], sha[:2], sha[2:4], sha).unlink()
    out = tmp_path / "backup"

    result = _backup(app, out)

    assert result.exit_code == 1
    assert f"missing: evidence file {sha}" in result.output
    assert list(out.iterdir()) == []
    with app.app_context():
        assert db.session.query(AuditEvent).count() == events


def test_restore_refuses_non_empty_target_unless_forced(app, tmp_path):
    """Restoring over a database with rows is refused naming --force; with --force the
    backed-up state replaces what was added since."""
    _fill(app)
    out = tmp_path / "backup"
    assert _backup(app, out).exit_code == 0
    with app.app_context():
        make_user(db.session)
        db.session.commit()
    changed = _state(app)

    refused = _restore(app, out)

    assert refused.exit_code == 1
    assert "not empty" in refused.output and "--force" in refused.output
    assert _state(app) == changed

    forced = _restore(app, out, "--force")

    assert forced.exit_code == 0, forced.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert _state(app)["counts"] == manifest["row_counts"]


def test_restore_refuses_evidence_folder_not_empty(app, restore_target, tmp_path):
    """An empty database with files in its evidence folder is not an empty target."""
    _fill(app)
    out = tmp_path / "backup"
    assert _backup(app, out).exit_code == 0
    target = restore_target()
    target.extensions["evidence_store"].put_stream([b"%PDF-1.4\nsomething else\n"])

    result = _restore(target, out)

    assert result.exit_code == 1
    assert "evidence store already holds 1 file" in result.output


@pytest.mark.parametrize("part", ["evidence", "database"])
def test_restore_detects_altered_backup(app, restore_target, tmp_path, part):
    """An altered evidence file or database dump in the backup stops the restore before
    anything is written, naming the file."""
    _fill(app)
    out = tmp_path / "backup"
    assert _backup(app, out).exit_code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    if part == "evidence":
        sha = manifest["evidence"][0]["sha256"]
        altered, name = out / "evidence" / sha[:2] / sha, sha
    else:
        altered = name = out / manifest["database"]["file"]
        name = altered.name
    with altered.open("ab") as f:
        f.write(b"tampered")
    target = restore_target()

    result = _restore(target, out)

    assert result.exit_code == 1
    assert name in result.output and "altered" in result.output
    assert "nothing was restored" in result.output
    state = _state(target)
    assert not any(state["counts"].values()) and state["evidence"] == {}


def test_restore_detects_edited_manifest_counts(app, restore_target, tmp_path):
    """A manifest whose row count disagrees with the data is refused before anything is put
    in place, naming the table, even when re-signed with the instance's key."""
    _fill(app)
    out = tmp_path / "backup"
    assert _backup(app, out).exit_code == 0
    counts = crafted.read_manifest(out)["row_counts"]
    crafted.resign(
        out,
        Path(app.config["AUDIT_KEY_FILE"]),
        row_counts=counts | {"user_account": counts["user_account"] + 1},
    )
    target = restore_target()

    result = _restore(target, out)

    assert result.exit_code == 1
    assert "table user_account: " in result.output and "nothing was restored" in result.output
    assert not any(_state(target)["counts"].values())


def test_restore_refuses_a_folder_without_manifest(app, tmp_path):
    """A folder that is not a complete backup (no manifest) is refused."""
    folder = tmp_path / "half"
    folder.mkdir()

    result = _restore(app, folder)

    assert result.exit_code == 1 and "not a complete backup" in result.output


def test_pg_dump_missing_is_a_clear_error(app, tmp_path, monkeypatch):
    """Without pg_dump on PATH the error names it and says how to install it; a PostgreSQL
    backup stops before writing anything."""
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))
    with pytest.raises(ops.OpsError, match="pg_dump was not found on PATH"):
        ops.require_tool("pg_dump")
    if PG_URL:
        out = tmp_path / "backup"
        result = _backup(app, out)
        assert result.exit_code == 1
        assert "pg_dump was not found on PATH" in result.output
        assert "postgresql-client" in result.output
        assert not out.exists()


@pytest.mark.postgres
def test_restore_refuses_to_rename_over_an_existing_schema(app, make_app, tmp_path):
    """In a database that still holds the backed-up schema, a restore into another schema is
    refused (pg_restore cannot rename it) and nothing is dropped."""
    _fill(app)
    out = tmp_path / "backup"
    assert _backup(app, out).exit_code == 0
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        target = make_app(
            INSTANCE_PATH=str(tmp_path / "other"),
            AUDIT_KEY_FILE=app.config["AUDIT_KEY_FILE"],
            SQLALCHEMY_ENGINE_OPTIONS={"connect_args": {"options": f"-csearch_path={schema}"}},
        )
        before = _state(app)

        result = _restore(target, out)

        assert result.exit_code == 1
        assert "already exists in the target database" in result.output
        assert _state(app) == before
    finally:
        with target.app_context():
            db.session.remove()
            db.engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# Doctor -------------------------------------------------------------------------------


@pytest.fixture
def healthy(make_app):
    """An app as in production: strong key, schema at head, data, a scheduler holding the
    lock and a recent successful run."""
    app = make_app(SECRET_KEY=STRONG_KEY)
    _fill(app)
    assert app.test_cli_runner().invoke(args=["tick"]).exit_code == 0
    with app.app_context():
        assert scheduler.acquire_lease("scheduler:test:1")
    return app


def test_doctor_ok_on_a_healthy_app(healthy):
    """Every check passes on a healthy app (with --full too); exit 0."""
    result = _doctor(healthy, "--full")

    assert result.exit_code == 0, result.output
    assert not [line for line in result.output.splitlines() if line.startswith("FAIL")]
    for name in (
        "secret key",
        "database",
        "migrations",
        "schema",
        "evidence folder",
        "scheduler lock",
        "scheduled jobs",
        "audit chain",
        "audit anchor",
        "evidence files",
    ):
        assert _line(result.output, name).startswith("OK  "), result.output


def test_doctor_fails_on_an_edited_audit_chain(healthy):
    """A raw UPDATE of an audit entry makes the audit-chain check FAIL (exit 1)."""
    with healthy.app_context():
        first = db.session.scalar(select(AuditEvent.id).order_by(AuditEvent.id).limit(1))
        db.session.execute(
            text("UPDATE audit_event SET action = 'user.nothing' WHERE id = :id"), {"id": first}
        )
        db.session.commit()

    result = _doctor(healthy)

    assert result.exit_code == 1
    assert _line(result.output, "audit chain").startswith("FAIL")
    assert f"broken at entry {first}" in result.output


def test_doctor_fails_on_a_planted_trigger(healthy):
    """A trigger no migration creates (here one that would hide sign-ins) FAILs the schema
    check, named (issue 11: it used to pass doctor)."""
    if PG_URL:
        statements = [
            "CREATE FUNCTION hide() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; "
            "END $$",
            "CREATE TRIGGER hide_logins AFTER INSERT ON audit_event FOR EACH ROW "
            "EXECUTE FUNCTION hide()",
        ]
    else:
        statements = [
            "CREATE TRIGGER hide_logins AFTER INSERT ON audit_event BEGIN "
            "DELETE FROM audit_event WHERE action = 'auth.login'; END"
        ]
    with healthy.app_context():
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()

    result = _doctor(healthy)

    assert result.exit_code == 1
    line = _line(result.output, "schema")
    assert line.startswith("FAIL") and "hide_logins" in line
    assert "not created by the migrations" in line


def test_doctor_reports_the_anchor(healthy):
    """The anchor line names the key and the newest checkpoint; after the newest entries
    are deleted it FAILs with the truncation; a key file others can read is a WARN."""
    ok = _line(_doctor(healthy).output, "audit anchor")
    key_file = Path(healthy.config["AUDIT_KEY_FILE"])
    key_file.chmod(0o644)
    loose = _line(_doctor(healthy).output, "audit anchor")
    key_file.chmod(0o600)
    with healthy.app_context():
        newest = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id.desc())).first()
        db.session.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": newest})
        db.session.commit()
    result = _doctor(healthy)

    assert ok.startswith("OK") and "newest checkpoint 0 hours old" in ok, ok
    assert loose.startswith("WARN") and "chmod 600" in loose
    assert result.exit_code == 1
    assert _line(result.output, "audit chain").startswith("OK")  # the chain alone is fine
    failed = _line(result.output, "audit anchor")
    assert failed.startswith("FAIL") and "entries were deleted" in failed


def test_doctor_fails_when_the_schema_is_behind(healthy):
    """A database stamped at an older revision than the migrations folder's head FAILs."""
    head = _head_revision()
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    older = ScriptDirectory.from_config(cfg).get_revision(head).down_revision
    with healthy.app_context():
        db.session.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": older})
        db.session.commit()

    result = _doctor(healthy)

    assert result.exit_code == 1
    line = _line(result.output, "migrations")
    assert line.startswith("FAIL") and f"at {older}, behind the head {head}" in line


def test_doctor_full_fails_on_a_missing_evidence_file(healthy):
    """A deleted evidence file passes the quick doctor but FAILs `doctor --full`, named."""
    with healthy.app_context():
        item = db.session.scalars(select(Evidence)).first()
        sha, evidence_id = item.sha256, item.id
        db.session.rollback()
    Path(healthy.config["EVIDENCE_PATH"], sha[:2], sha[2:4], sha).unlink()

    assert _doctor(healthy).exit_code == 0
    result = _doctor(healthy, "--full")

    assert result.exit_code == 1
    line = _line(result.output, "evidence files")
    assert line.startswith("FAIL") and f"missing: evidence {evidence_id} ({sha})" in line


def test_doctor_warns_without_a_scheduler(make_app):
    """No scheduler run and no lock holder are warnings (exit 0), not failures."""
    app = make_app(SECRET_KEY=STRONG_KEY)
    _fill(app)

    result = _doctor(app)

    assert result.exit_code == 0, result.output
    assert _line(result.output, "scheduler lock").startswith("WARN")
    assert _line(result.output, "scheduled jobs").startswith("WARN")


@pytest.mark.parametrize(
    ("config", "status", "message"),
    [
        ({"SECRET_KEY": None}, ops.Health.FAIL, "not set"),
        ({"SECRET_KEY": ops.EXAMPLE_SECRET_KEY}, ops.Health.FAIL, "example value"),
        ({"SECRET_KEY": "short"}, ops.Health.WARN, "short"),
        ({"BASE_URL": "https://audit.example.jp"}, ops.Health.WARN, "SESSION_COOKIE_SECURE"),
        ({"DEBUG": True}, ops.Health.WARN, "DEBUG is on"),
    ],
)
def test_doctor_config_checks(config, status, message):
    """The secret key, the cookie flag against an https BASE_URL and DEBUG are judged."""
    settings = {"SECRET_KEY": STRONG_KEY, "BASE_URL": "http://127.0.0.1:5000"} | config

    found = ops.check_config(settings)

    assert [d.status for d in found if message in d.detail] == [status]
    assert all(d.status is ops.Health.OK for d in found if message not in d.detail)
