"""`restore` refuses crafted backups (issue 11 item 6; ASVS 15.2 / 16.4): an edited
manifest, links and special files in the folder, a planted trigger, view, table or
column, an edited audit trail. Each is refused with a clear message and the target is
left as it was. On SQLite, or on PostgreSQL when AUDITAPP_TEST_DATABASE_URL is set."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import select, text

from auditapp.extensions import db
from auditapp.models import GENESIS_HASH, AuditEvent
from auditapp.services import audit
from tests.conftest import PG_URL
from tests.security import crafted
from tests.security.crafted import backup, fill, restore, state

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="edits the SQLite dump file")


@pytest.fixture
def restore_target(make_app, tmp_path):
    """Builds fresh apps to restore into (see crafted.restore_targets)."""
    yield from crafted.restore_targets(make_app, tmp_path)


@pytest.fixture
def made(app, tmp_path):
    """A filled app and a good backup of it."""
    fill(app)
    out = tmp_path / "backup"
    result = backup(app, out)
    assert result.exit_code == 0, result.output
    return app, out


def _key(app) -> Path:
    return Path(app.config["AUDIT_KEY_FILE"])


def _refused(result, target, *phrases: str) -> None:
    """Exit 1 naming each phrase; the target database and evidence folder still empty."""
    assert result.exit_code == 1, result.output
    for phrase in phrases:
        assert phrase in result.output, result.output
    assert "nothing was restored" in result.output
    after = state(target)
    assert not any(n for t, n in after["counts"].items() if t != "alembic_version")
    assert after["evidence"] == {}


def _plant(app, *statements: str) -> None:
    """Objects planted in the live database before it is backed up (a compromised source:
    the backup is genuine and signed)."""
    with app.app_context():
        for statement in statements:
            db.session.execute(text(statement))
        db.session.commit()


# The manifest's signature --------------------------------------------------------------


def test_a_clean_backup_restores_and_anchors(made, restore_target):
    """A genuine backup restores, says the signature was verified and writes a restore
    checkpoint; the restored trail then verifies against it."""
    app, out = made
    target = restore_target()

    result = restore(target, out)

    assert result.exit_code == 0, result.output
    assert "verified: manifest signature, schema, row counts, audit trail" in result.output
    assert '"reason":"restore"' in result.output
    verify = target.test_cli_runner().invoke(args=["audit", "verify"])
    assert verify.exit_code == 0 and "anchored: newest checkpoint" in verify.output


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m | {"created_at": "2020-01-01T00:00:00+00:00"},
        lambda m: m | {"row_counts": m["row_counts"] | {"audit_event": 1}},
        lambda m: m | {"audit_chain": {"entries": 1, "head": GENESIS_HASH}},
        lambda m: {k: v for k, v in m.items() if k != "signature"},
    ],
    ids=["time", "counts", "chain", "signature removed"],
)
def test_manifest_edited_after_signing_is_refused(made, restore_target, edit):
    """Any change to a signed manifest (or dropping its signature) is refused before the
    backup is read any further."""
    _app, out = made
    crafted.write_manifest(out, edit(crafted.read_manifest(out)))
    target = restore_target()

    result = restore(target, out)

    _refused(result, target, "the backup's manifest is refused")
    assert "--trust-unsigned" in result.output


def test_a_key_of_another_instance_is_refused(made, restore_target):
    """An instance with another audit key cannot verify the manifest: refused, named."""
    _app, out = made
    target = restore_target(with_key=False)
    _key(target).write_text("ab" * 32 + "\n")

    result = restore(target, out)

    _refused(result, target, "which is not in the audit key file")


def test_trust_unsigned_still_runs_every_other_check(made, restore_target):
    """--trust-unsigned accepts an unsigned manifest, yet a planted view is still refused."""
    app, out = made
    _plant(app, "CREATE VIEW people_view AS SELECT * FROM user_account")
    out2 = out.parent / "backup-2"
    assert backup(app, out2).exit_code == 0
    manifest = crafted.read_manifest(out2)
    del manifest["signature"]
    crafted.write_manifest(out2, manifest)
    target = restore_target()

    result = restore(target, out2, "--trust-unsigned")

    _refused(result, target, "people_view")


def test_trust_unsigned_restores_an_old_unsigned_backup(made, restore_target):
    """A backup from before manifests were signed (format 1) restores with
    --trust-unsigned, saying its manifest was not verified."""
    _app, out = made
    manifest = crafted.read_manifest(out)
    for name in ("signature", "audit_checkpoint"):
        del manifest[name]
    crafted.write_manifest(out, manifest | {"format": 1})
    target = restore_target()

    refused = restore(target, out)
    result = restore(target, out, "--trust-unsigned")

    assert refused.exit_code == 1 and "not signed" in refused.output
    assert result.exit_code == 0, result.output
    assert "note: the manifest was not verified" in result.output


# The folder: links and special files ---------------------------------------------------


def _first_evidence(out: Path) -> Path:
    sha = crafted.read_manifest(out)["evidence"][0]["sha256"]
    return out / "evidence" / sha[:2] / sha


def test_a_symlink_in_the_backup_is_refused(made, restore_target, tmp_path):
    """An evidence file replaced by a symbolic link (to a file with the very same bytes,
    so following it would pass every hash) is refused, never followed."""
    _app, out = made
    blob = _first_evidence(out)
    outside = tmp_path / "outside"
    outside.write_bytes(blob.read_bytes())
    blob.unlink()
    blob.symlink_to(outside)
    target = restore_target()

    result = restore(target, out)

    _refused(result, target, "a symbolic link in the backup")


def test_a_symlinked_folder_in_the_backup_is_refused(made, restore_target, tmp_path):
    """A shard folder replaced by a link to a folder outside is refused too."""
    _app, out = made
    shard = _first_evidence(out).parent
    outside = tmp_path / "outside-shard"
    shard.rename(outside)
    shard.symlink_to(outside, target_is_directory=True)
    target = restore_target()

    result = restore(target, out)

    _refused(result, target, "a symbolic link in the backup")


def test_a_hard_link_in_the_backup_is_refused(made, restore_target, tmp_path):
    """An evidence file hard-linked from outside the folder is refused."""
    _app, out = made
    blob = _first_evidence(out)
    outside = tmp_path / "outside"
    outside.write_bytes(blob.read_bytes())
    blob.unlink()
    os.link(outside, blob)
    target = restore_target()

    result = restore(target, out)

    _refused(result, target, "hard links")


def test_a_special_file_in_the_backup_is_refused(made, restore_target):
    """A named pipe in the folder is refused (and reading never blocks on it)."""
    _app, out = made
    os.mkfifo(out / "evidence" / "pipe")
    target = restore_target()

    result = restore(target, out)

    _refused(result, target, "evidence/pipe: a special file in the backup")


def test_a_symlinked_manifest_is_refused(made, restore_target, tmp_path):
    """Even the manifest is not read through a link."""
    _app, out = made
    real = tmp_path / "manifest-elsewhere.json"
    (out / "manifest.json").rename(real)
    (out / "manifest.json").symlink_to(real)

    result = restore(restore_target(), out)

    assert result.exit_code == 1
    assert "manifest.json: a symbolic link in the backup" in result.output


# The schema: what the migrations do not create -----------------------------------------

_TRIGGER = {
    "sqlite": [
        "CREATE TRIGGER hide_logins AFTER INSERT ON audit_event "
        "BEGIN DELETE FROM audit_event WHERE action = 'auth.login'; END"
    ],
    "postgresql": [
        "CREATE FUNCTION hide_logins() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RETURN NEW; END $$",
        "CREATE TRIGGER hide_logins BEFORE INSERT ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION hide_logins()",
    ],
}


@pytest.mark.parametrize(
    ("planted", "named"),
    [
        ("trigger", "hide_logins"),
        (["CREATE VIEW people_view AS SELECT * FROM user_account"], "people_view"),
        (["CREATE TABLE exfiltrate (id integer PRIMARY KEY, data text)"], "exfiltrate"),
        (["ALTER TABLE user_account ADD COLUMN backdoor text"], "backdoor"),
        (["CREATE INDEX ix_sneaky ON user_account (name)"], "ix_sneaky"),
    ],
    ids=["trigger", "view", "table", "column", "index"],
)
def test_objects_the_migrations_do_not_create_are_refused(
    app, tmp_path, restore_target, planted, named
):
    """A genuine, signed backup of a database someone planted objects in is refused by
    the schema check, naming the object."""
    fill(app)
    kind = "postgresql" if PG_URL else "sqlite"
    _plant(app, *(_TRIGGER[kind] if planted == "trigger" else planted))
    out = tmp_path / "backup"
    assert backup(app, out).exit_code == 0
    target = restore_target()

    result = restore(target, out)

    _refused(result, target, named)
    assert "not created by the migrations" in result.output or "holds" in result.output


def test_a_refused_restore_leaves_a_full_target_unchanged(app, tmp_path):
    """Restoring (with --force) a backup with a planted table over the app's own data is
    refused, and the data stays exactly as it was (PostgreSQL: the transaction that
    dropped the old tables is rolled back)."""
    fill(app)
    _plant(app, "CREATE TABLE exfiltrate (id integer PRIMARY KEY)")
    out = tmp_path / "backup"
    assert backup(app, out).exit_code == 0
    _plant(app, "DROP TABLE exfiltrate")
    before = state(app)

    result = restore(app, out, "--force")

    assert result.exit_code == 1
    assert "exfiltrate" in result.output and "nothing was restored" in result.output
    assert state(app) == before


@sqlite_only
@pytest.mark.parametrize(
    ("statement", "named"),
    [
        (
            "CREATE TRIGGER t AFTER INSERT ON user_account BEGIN SELECT 1; END",
            "trigger t on user_account: not created by the migrations",
        ),
        ("CREATE VIEW v AS SELECT 1", "view v: not created by the migrations"),
        ("CREATE TABLE extra (x)", "table extra: not created by the migrations"),
        (
            "ALTER TABLE audit_event ADD COLUMN note TEXT",
            "): column note not created by the migrations",
        ),
        ("DROP INDEX ix_audit_event_at", "index ix_audit_event_at: created by the migrations"),
    ],
    ids=["trigger", "view", "table", "column", "missing index"],
)
def test_sqlite_dump_edited_and_resigned_is_refused(made, restore_target, statement, named):
    """An edited SQLite dump re-signed with the key (behind the signature, the schema
    check still holds) is refused naming the difference."""
    app, out = made
    crafted.edit_sqlite_dump(out, statement)
    crafted.resign(out, _key(app))
    target = restore_target()

    result = restore(target, out)

    _refused(result, target, named)


# The audit trail -----------------------------------------------------------------------


@sqlite_only
def test_an_edited_audit_row_is_refused(made, restore_target):
    """An audit row edited in the dump (manifest re-signed) breaks the chain: refused."""
    app, out = made
    crafted.edit_sqlite_dump(
        out, "UPDATE audit_event SET actor_label = 'someone else' WHERE id = 2"
    )
    crafted.resign(out, _key(app))
    target = restore_target()

    result = restore(target, out)

    _refused(result, target, "audit chain broken at entry 2: content does not match")


@sqlite_only
def test_an_edited_and_rechained_trail_is_refused(made, restore_target):
    """Rewriting an entry and recomputing every later hash passes the chain, but not the
    manifest's signed checkpoint (which the editor cannot sign)."""
    app, out = made
    dump = out / "database.sqlite3"
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(dump)) as conn:
        rows = conn.execute("SELECT id FROM audit_event ORDER BY id").fetchall()
    _rechain_dump(dump, [r[0] for r in rows], edit_id=rows[1][0])
    crafted.resign(out, _key(app))
    target = restore_target()

    result = restore(target, out)

    _refused(result, target, "but the checkpoint of", "rewritten or re-chained")


def _rechain_dump(dump: Path, ids: list[int], edit_id: int) -> None:
    """Edit one entry of the dump's trail and recompute the hashes after it."""
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    engine = create_engine(f"sqlite:///{dump}")
    with Session(engine) as session:
        events = session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        prev = GENESIS_HASH
        for event in events:
            if event.id == edit_id:
                event.actor_label = "someone else"
            event.prev_hash = f"moving-{event.id}"
            session.flush()
            event.prev_hash = prev
            event.hash = audit.entry_hash(prev, event)
            session.flush()
            prev = event.hash
        session.commit()
    engine.dispose()


def test_an_audit_row_edited_before_the_backup_is_refused(app, tmp_path, restore_target):
    """A trail edited in the live database before a (genuine) backup is refused on restore,
    on PostgreSQL inside the uncommitted transaction."""
    fill(app)
    with app.app_context():
        second = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()[1]
    _plant(app, f"UPDATE audit_event SET action = 'user.nothing' WHERE id = {second}")
    out = tmp_path / "backup"
    assert backup(app, out).exit_code == 0
    target = restore_target()

    result = restore(target, out)

    _refused(result, target, f"audit chain broken at entry {second}")


def test_a_backup_contradicting_the_instance_checkpoints_is_refused(app, tmp_path):
    """On the instance that made it, a backup whose trail was re-chained before the backup
    (the manifest's checkpoint is then of the rewritten trail) contradicts the instance's
    own older checkpoint: refused, the data unchanged."""
    fill(app)
    assert app.test_cli_runner().invoke(args=["audit", "checkpoint"]).exit_code == 0
    with app.app_context():
        ids = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        prev = events[0].hash
        for event in events[1:]:
            if event.id == ids[1]:
                event.actor_label = "someone else"
            event.prev_hash = f"moving-{event.id}"
            db.session.flush()
            event.prev_hash = prev
            event.hash = audit.entry_hash(prev, event)
            db.session.flush()
            prev = event.hash
        db.session.commit()
    out = tmp_path / "backup"
    assert backup(app, out).exit_code == 0
    before = state(app)

    result = restore(app, out, "--force")

    assert result.exit_code == 1
    assert "rewritten or re-chained" in result.output and "nothing was restored" in result.output
    assert state(app) == before


def test_restoring_an_older_backup_needs_force_and_is_anchored(app, tmp_path):
    """A backup older than the instance's newest checkpoint drops entries: restored with
    --force (as a non-empty target needs) with a note naming the checkpoint; the restore
    checkpoint then supersedes it, so `audit verify` passes and says so."""
    fill(app)
    out = tmp_path / "backup"
    assert backup(app, out).exit_code == 0
    with app.app_context():
        for i in range(3):
            audit.record(db.session, actor="t", action="test.later", object_type="t", after=[i])
        db.session.commit()
    assert app.test_cli_runner().invoke(args=["audit", "checkpoint"]).exit_code == 0

    result = restore(app, out, "--force")
    verify = app.test_cli_runner().invoke(args=["audit", "verify"])

    assert result.exit_code == 0, result.output
    assert "note: this instance's checkpoint of" in result.output
    assert "restoring it drops the entries recorded since" in result.output
    assert verify.exit_code == 0, verify.output
    assert "1 superseded by a restore" in verify.output
    last = json.loads(Path(app.config["AUDIT_CHECKPOINT_FILE"]).read_text().splitlines()[-1])
    assert last["reason"] == "restore"


def test_an_older_backup_is_refused_without_force(app, tmp_path, restore_target):
    """Into an empty database whose instance holds newer checkpoints (the trail was longer
    than the backup's), the restore is refused unless --force, naming the checkpoint."""
    fill(app)
    out = tmp_path / "backup"
    assert backup(app, out).exit_code == 0
    with app.app_context():
        audit.record(db.session, actor="t", action="test.later", object_type="t")
        db.session.commit()
    assert app.test_cli_runner().invoke(args=["audit", "checkpoint"]).exit_code == 0
    target = restore_target()
    checkpoints = Path(app.config["AUDIT_CHECKPOINT_FILE"])
    Path(target.config["AUDIT_CHECKPOINT_FILE"]).write_bytes(checkpoints.read_bytes())

    result = restore(target, out)

    _refused(result, target, "restoring it drops the entries recorded since", "--force")
