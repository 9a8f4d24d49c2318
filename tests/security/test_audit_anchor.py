"""The audit trail's anchor (issue 11 item 4; ASVS 16.4.2 logs protected from modification):
signed checkpoints outside the database catch what the hash chain alone cannot: deleted
newest entries, and entries rewritten with every later hash recomputed. On SQLite, or on
PostgreSQL when AUDITAPP_TEST_DATABASE_URL is set."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
from sqlalchemy import select, text

from auditapp import create_app
from auditapp.cli import cli as auditapp_cli
from auditapp.extensions import db
from auditapp.models import GENESIS_HASH, AuditEvent
from auditapp.services import audit


def _record(app, n: int) -> None:
    with app.app_context():
        for i in range(n):
            audit.record(db.session, actor="test", action="test.note", object_type="t", after=[i])
        db.session.commit()


def _verify(app, *args: str):
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


def _checkpoint(app):
    result = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output.splitlines()[-1])


def _rechain_from(app, position: int, **changes) -> None:
    """Edit the entry at `position` (1 = first) and recompute every hash after it, as
    someone with write access to the table (but not the key) can."""
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)).all()
        prev = events[position - 2].hash if position > 1 else GENESIS_HASH
        for event in events[position - 1 :]:
            if event is events[position - 1]:
                for name, value in changes.items():
                    setattr(event, name, value)
            event.prev_hash = "pending-" + str(event.id)  # UNIQUE(prev_hash) while moving
            db.session.flush()
            event.prev_hash = prev
            event.hash = audit.entry_hash(prev, event)
            db.session.flush()
            prev = event.hash
        db.session.commit()


@pytest.fixture
def anchored(app):
    """A trail of 6 entries with a checkpoint after the 4th and one after the 6th."""
    _record(app, 4)
    _checkpoint(app)
    _record(app, 2)
    _checkpoint(app)
    return app


def test_clean_trail_verifies_against_its_checkpoints(anchored):
    """An untouched trail verifies: exit 0, entries, head and the newest checkpoint."""
    with anchored.app_context():
        head = audit.head(db.session)

    result = _verify(anchored)

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"audit chain intact: 6 entries, head {head}"
    assert lines[1].startswith("anchored: newest checkpoint of ")
    assert f"(6 entries, head {head}) verified" in lines[1]
    assert "2 checkpoint(s) checked" in lines[1]


def test_tail_deletion_is_truncation(anchored):
    """Deleting the two newest entries keeps the chain intact but not the anchor."""
    with anchored.app_context():
        ids = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()
        db.session.execute(text("DELETE FROM audit_event WHERE id >= :i"), {"i": ids[4]})
        db.session.commit()
        assert audit.verify(db.session).ok  # what the chain alone says

    result = _verify(anchored)

    assert result.exit_code == 1
    assert "the trail ends at entry 4 but the checkpoint of" in result.stderr
    assert "recorded 6 entries" in result.stderr and "entries were deleted" in result.stderr


def test_middle_edit_with_full_rechain_is_rewriting(anchored):
    """Rewriting entry 2 and recomputing every later hash passes the chain, not the anchor:
    both checkpoints name the position whose hash changed."""
    _rechain_from(anchored, 2, after_json='{"rewritten":true}')
    with anchored.app_context():
        assert audit.verify(db.session).ok

    result = _verify(anchored)

    assert result.exit_code == 1
    problems = result.stderr.splitlines()
    assert len(problems) == 2, result.stderr
    assert problems[0].startswith("error: entry 4 of the trail has hash ")
    assert problems[1].startswith("error: entry 6 of the trail has hash ")
    assert all("rewritten or re-chained" in line for line in problems)


def test_deleting_entries_and_rechaining_is_caught(anchored):
    """Deleting entry 3 and re-chaining the rest: fewer entries than the newest checkpoint
    and another hash at the older checkpoint's position."""
    with anchored.app_context():
        third = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id)).all()[2]
        db.session.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": third})
        db.session.commit()
    _rechain_from(anchored, 3)

    result = _verify(anchored)

    assert result.exit_code == 1
    assert "the trail ends at entry 5 but the checkpoint of" in result.stderr
    assert "entry 4 of the trail has hash" in result.stderr


def test_edited_checkpoint_file_is_a_forged_checkpoint(anchored):
    """A checkpoint edited to match a truncated trail fails its signature."""
    path = Path(anchored.config["AUDIT_CHECKPOINT_FILE"])
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    record["entries"] = 4
    lines[1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")

    result = _verify(anchored)

    assert result.exit_code == 1
    assert "line 2): the signature does not verify (forged or edited" in result.stderr


def test_removed_checkpoint_record_is_noticed(anchored):
    """Removing the first checkpoint from the file breaks the records' own links."""
    path = Path(anchored.config["AUDIT_CHECKPOINT_FILE"])
    path.write_text(path.read_text().splitlines()[1] + "\n")

    result = _verify(anchored)

    assert result.exit_code == 1
    assert "line 1: does not follow the record before it" in result.stderr


def test_a_garbled_checkpoint_line_is_named(anchored):
    """A line that is not a checkpoint is reported with its line number."""
    path = Path(anchored.config["AUDIT_CHECKPOINT_FILE"])
    path.write_text(path.read_text() + '{"v": 1, "entries": "many"}\n')

    result = _verify(anchored)

    assert result.exit_code == 1
    assert "line 3: not a checkpoint (entries: expected a count)" in result.stderr


def test_wrong_key_cannot_verify_the_checkpoints(anchored):
    """With another key in the key file, every checkpoint is named as signed by an unknown
    key (a replaced key is not silently accepted)."""
    key_file = Path(anchored.config["AUDIT_KEY_FILE"])
    key_file.write_text("ab" * 32 + "\n")

    result = _verify(anchored)

    assert result.exit_code == 1
    assert result.stderr.count("which is not in the audit key file") == 2


def test_checkpoints_without_their_key_are_not_verifiable(anchored):
    """A deleted key file is a failure, and no new key is made to hide it."""
    Path(anchored.config["AUDIT_KEY_FILE"]).unlink()

    result = _verify(anchored)
    refused = anchored.test_cli_runner().invoke(args=["audit", "checkpoint"])

    assert result.exit_code == 1
    assert "2 checkpoint(s) cannot be verified: there is no audit key file" in result.stderr
    assert refused.exit_code == 1 and "is missing, but" in refused.output
    assert not Path(anchored.config["AUDIT_KEY_FILE"]).exists()


def test_a_rotated_key_keeps_old_checkpoints_verifiable(anchored):
    """A new key on the first line signs; the old one below it still verifies."""
    key_file = Path(anchored.config["AUDIT_KEY_FILE"])
    old = [ln for ln in key_file.read_text().splitlines() if not ln.startswith("#")]
    key_file.write_text("cd" * 32 + "\n" + "\n".join(old) + "\n")
    _record(anchored, 1)
    newest = _checkpoint(anchored)

    result = _verify(anchored)

    assert result.exit_code == 0, result.output
    assert newest["key_id"] == audit.key_id(bytes.fromhex("cd" * 32))
    assert "3 checkpoint(s) checked" in result.output


def test_secret_key_rotation_does_not_touch_the_anchor(anchored, make_app):
    """The anchor's key is not SECRET_KEY: a new SECRET_KEY verifies the same checkpoints."""
    rotated = make_app(SECRET_KEY="another-secret-key-entirely-" + "x" * 20)

    assert _verify(rotated).exit_code == 0


def test_key_file_is_private_and_created_once(app):
    """The first checkpoint creates the key file with mode 0600; later ones reuse it."""
    _checkpoint(app)
    key_file = Path(app.config["AUDIT_KEY_FILE"])
    first = key_file.read_text()
    _checkpoint(app)

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(app.config["AUDIT_CHECKPOINT_FILE"]).stat().st_mode) == 0o600
    assert key_file.read_text() == first


def test_init_creates_the_key(tmp_path, database_url):
    """`auditapp init` on a new installation creates the key file, and says so."""
    url, options = database_url
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "new"),
            "DATABASE_URL": url,
            "SQLALCHEMY_ENGINE_OPTIONS": options,
        }
    )
    try:
        result = app.test_cli_runner().invoke(auditapp_cli, ["init"])
        again = app.test_cli_runner().invoke(auditapp_cli, ["init"])
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()

    assert result.exit_code == 0, result.output
    assert f"audit key: created {tmp_path / 'new' / 'audit.key'}" in result.output
    assert stat.S_IMODE((tmp_path / "new" / "audit.key").stat().st_mode) == 0o600
    assert "audit key" not in again.output


def test_checkpoint_is_logged_and_printed(app, caplog):
    """A checkpoint goes to the app log as the same line `audit checkpoint` prints."""
    _record(app, 2)
    with caplog.at_level(logging.INFO, logger="auditapp.services.audit"):
        printed = app.test_cli_runner().invoke(args=["audit", "checkpoint"]).output.strip()

    assert f"audit checkpoint {printed}" in caplog.text
    assert json.loads(printed)["entries"] == 2


def test_checkpoints_kept_elsewhere_catch_a_replaced_file(anchored, tmp_path):
    """Checkpoint lines copied from the log to a safe place still catch a truncation after
    the instance's checkpoint file was deleted."""
    path = Path(anchored.config["AUDIT_CHECKPOINT_FILE"])
    kept = tmp_path / "from-the-log.txt"
    kept.write_text(
        "".join(f"2026-04-01 INFO auditapp: audit checkpoint {ln}\n" for ln in path.open())
    )
    path.unlink()
    with anchored.app_context():
        newest = db.session.scalars(select(AuditEvent.id).order_by(AuditEvent.id.desc())).first()
        db.session.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": newest})
        db.session.commit()

    plain = _verify(anchored)
    result = _verify(anchored, "--checkpoints", str(kept))

    assert plain.exit_code == 0 and "not anchored" in plain.output
    assert result.exit_code == 1
    assert "the trail ends at entry 5 but the checkpoint of" in result.stderr


def test_scheduled_job_writes_a_checkpoint(app):
    """The daily tick writes a signed checkpoint of the trail."""
    _record(app, 3)

    result = app.test_cli_runner().invoke(args=["tick", "--today", "2026-04-01"])

    assert result.exit_code == 0, result.output
    lines = Path(app.config["AUDIT_CHECKPOINT_FILE"]).read_text().splitlines()
    assert json.loads(lines[-1])["reason"] == "daily"
    assert _verify(app).exit_code == 0
