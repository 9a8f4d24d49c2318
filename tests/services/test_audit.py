"""The hash-chained audit trail: appends, canonical form, tamper detection."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from auditapp.models import GENESIS_HASH, AuditEvent
from auditapp.models.types import utcnow
from auditapp.services import audit


def _three(session):
    for i in range(3):
        audit.record(
            session,
            actor="tester",
            action="test.event",
            object_type="thing",
            object_id=i,
            before={"n": i},
            after={"n": i + 1, "when": "2026-04-01"},
        )
    session.commit()


def test_first_entry_chains_from_genesis(session):
    """The first entry's previous hash is the genesis hash; each hash covers the previous."""
    _three(session)
    events = session.query(AuditEvent).order_by(AuditEvent.id).all()
    assert events[0].prev_hash == GENESIS_HASH
    assert events[1].prev_hash == events[0].hash
    assert events[1].hash == audit.entry_hash(events[0].hash, events[1])


def test_canonical_json_is_stable():
    """Canonical JSON sorts keys, has no spaces, keeps Japanese, writes no floats."""
    assert audit.canonical_json({"b": 1, "a": "日本", "f": 1.5}) == '{"a":"日本","b":1,"f":"1.5"}'


def test_hash_is_sha256_of_prev_plus_canonical_entry(session):
    """The stored hash is SHA-256 of the previous hash followed by the canonical entry."""
    _three(session)
    event = session.query(AuditEvent).order_by(AuditEvent.id).first()
    entry = audit.canonical_json(
        {
            "at": event.at.isoformat(),
            "actor_id": None,
            "actor_label": "tester",
            "action": "test.event",
            "object_type": "thing",
            "object_id": "0",
            "before": '{"n":0}',
            "after": '{"n":1,"when":"2026-04-01"}',
            "client_addr": None,
            "request_id": None,
        }
    )
    assert event.hash == hashlib.sha256((GENESIS_HASH + entry).encode()).hexdigest()


def test_verify_intact_chain(session):
    """verify reports the entry count and the head hash of an intact chain."""
    _three(session)
    report = audit.verify(session)
    assert report.ok and report.count == 3 and report.head == audit.head(session)


def test_verify_detects_an_edited_row(session):
    """A row edited directly in the database is named as the first broken entry."""
    _three(session)
    second = session.query(AuditEvent).order_by(AuditEvent.id).all()[1].id
    session.execute(
        text("UPDATE audit_event SET after_json = :v WHERE id = :i"), {"v": '{"n":99}', "i": second}
    )
    session.commit()
    session.expire_all()
    report = audit.verify(session)
    assert not report.ok and report.broken_id == second and "content" in report.problem


def test_verify_detects_a_deleted_row(session):
    """Deleting an entry breaks the link of the entry after it."""
    _three(session)
    ids = [e.id for e in session.query(AuditEvent).order_by(AuditEvent.id)]
    session.execute(text("DELETE FROM audit_event WHERE id = :i"), {"i": ids[1]})
    session.commit()
    report = audit.verify(session)
    assert report.broken_id == ids[2] and "previous" in report.problem


def test_fork_is_refused_by_unique_prev_hash(session):
    """Two entries claiming the same predecessor cannot both be stored."""
    _three(session)
    last = session.query(AuditEvent).order_by(AuditEvent.id.desc()).first()
    fork = AuditEvent(
        at=last.at,
        actor_label="x",
        action="fork",
        object_type="thing",
        prev_hash=last.prev_hash,
        hash="f" * 64,
    )
    session.add(fork)
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_verify_keeps_hashes_at_positions_past_a_break(session):
    """With positions, verify walks on past the first break and keeps the stored hashes."""
    _three(session)
    hashes = [e.hash for e in session.query(AuditEvent).order_by(AuditEvent.id)]
    first = session.query(AuditEvent).order_by(AuditEvent.id).first().id
    session.execute(text("UPDATE audit_event SET action = 'x' WHERE id = :i"), {"i": first})
    session.commit()
    session.expire_all()

    report = audit.verify(session, positions={0, 3})

    assert not report.ok and report.broken_id == first
    assert report.total == 3 and report.stored == {0: GENESIS_HASH, 3: hashes[2]}


def test_trail_state_is_count_and_head(session):
    """trail_state reads the entry count and the head hash together."""
    assert audit.trail_state(session) == (0, GENESIS_HASH)
    _three(session)
    assert audit.trail_state(session) == (3, audit.head(session))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"entries": -1}, "entries"),
        ({"head": "zz"}, "head"),
        ({"reason": "because"}, "reason"),
        ({"at": "2026-04-01T00:00:00"}, "UTC offset"),
        ({"v": 2}, "version"),
    ],
)
def test_checkpoint_records_are_checked_for_shape(change, problem):
    """A checkpoint record with a bad field is refused naming the field."""
    keys = audit.AuditKeys([b"k" * 32])
    good = audit.sign_checkpoint(keys, entries=1, head="a" * 64, reason="manual").to_json()

    assert audit.Checkpoint.from_json(good) == audit.Checkpoint.from_json(dict(good))
    with pytest.raises(ValueError, match=problem):
        audit.Checkpoint.from_json(good | change)


def test_a_restore_checkpoint_supersedes_longer_ones(session):
    """After a "restore" checkpoint, older checkpoints of more entries no longer bind; those
    of fewer entries still do."""
    keys = audit.AuditKeys([b"k" * 32])
    _three(session)
    hashes = [e.hash for e in session.query(AuditEvent).order_by(AuditEvent.id)]
    at = utcnow()
    points = [
        audit.sign_checkpoint(keys, entries=1, head=hashes[0], reason="daily", at=at),
        audit.sign_checkpoint(keys, entries=5, head="b" * 64, reason="daily", at=at),
        audit.sign_checkpoint(
            keys, entries=3, head=hashes[2], reason="restore", at=at + timedelta(seconds=1)
        ),
    ]

    report = audit.verify_anchored(session, keys, points)

    assert report.ok, report.problems
    assert report.superseded == 1 and len(report.checked) == 2
