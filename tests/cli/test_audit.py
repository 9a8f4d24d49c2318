"""`auditapp audit verify`: the chain is recomputed and any tampering is named."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from auditapp.extensions import db
from auditapp.models import AuditEvent
from auditapp.services import audit
from tests.cli.helpers import invoke
from tests.factories import make_user


@pytest.fixture
def trail(app, users):
    """An audit trail of several entries (the users fixture records one per person)."""
    with app.app_context():
        make_user(db.session, email="extra@example.jp")
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(AuditEvent)) == 5
    return app


def tamper(app, sql: str, **params) -> None:
    """Change the audit table behind the application's back, as a DBA could."""
    with app.app_context():
        db.session.execute(text(sql), params)
        db.session.commit()


def test_audit_verify_intact_chain(trail, runner):
    """`audit verify` on an untouched trail exits 0 with the entry count and head hash."""
    with trail.app_context():
        head = audit.head(db.session)

    result = invoke(runner, "audit", "verify")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"audit chain intact: 5 entries, head {head}"


def test_audit_verify_empty_trail(app, runner):
    """An empty trail is intact: 0 entries, head is the genesis hash."""
    result = invoke(runner, "audit", "verify")

    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == f"audit chain intact: 0 entries, head {'0' * 64}"


def test_audit_verify_detects_row_edited_in_database(trail, runner):
    """Acceptance: a row edited directly in the database is detected and named (entry 2)."""
    tamper(trail, "UPDATE audit_event SET after_json = :v WHERE id = 2", v='{"tampered":true}')

    result = invoke(runner, "audit", "verify")

    assert result.exit_code == 1
    assert (
        "error: audit chain broken at entry 2: content does not match its hash "
        "(1 entries verified before it)"
    ) in result.stderr


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_event SET actor_label = 'someone else' WHERE id = 2",
        "UPDATE audit_event SET action = 'user.view' WHERE id = 2",
        "UPDATE audit_event SET at = '2020-01-01 00:00:00.000000' WHERE id = 2",
        "UPDATE audit_event SET object_id = '999' WHERE id = 2",
    ],
    ids=["actor", "action", "time", "object"],
)
def test_audit_verify_detects_any_edited_column(trail, runner, sql):
    """Editing any hashed column of an entry breaks the chain at that entry."""
    tamper(trail, sql)

    result = invoke(runner, "audit", "verify")

    assert result.exit_code == 1
    assert "audit chain broken at entry 2: content does not match its hash" in result.stderr


def test_audit_verify_detects_deleted_middle_row(trail, runner):
    """Deleting a middle entry is detected at the entry after the gap."""
    tamper(trail, "DELETE FROM audit_event WHERE id = 3")

    result = invoke(runner, "audit", "verify")

    assert result.exit_code == 1
    assert (
        "error: audit chain broken at entry 4: previous hash does not match "
        "(2 entries verified before it)"
    ) in result.stderr


def test_audit_verify_detects_edit_with_recomputed_hash(trail, runner):
    """Rewriting an entry and its own hash is still caught at the next entry."""
    with trail.app_context():
        event = db.session.get(AuditEvent, 2)
        event.after_json = '{"tampered":true}'
        new_hash = audit.entry_hash(event.prev_hash, event)
        db.session.rollback()
    tamper(
        trail,
        "UPDATE audit_event SET after_json = :v, hash = :h WHERE id = 2",
        v='{"tampered":true}',
        h=new_hash,
    )

    result = invoke(runner, "audit", "verify")

    assert result.exit_code == 1
    assert "audit chain broken at entry 3: previous hash does not match" in result.stderr


def test_audit_verify_detects_edited_last_row(trail, runner):
    """Editing the newest entry is detected too."""
    tamper(trail, "UPDATE audit_event SET object_id = '1' WHERE id = 5")

    result = invoke(runner, "audit", "verify")

    assert result.exit_code == 1
    assert "audit chain broken at entry 5" in result.stderr
