"""Syncing the catalog into the database, and the organization's choices about controls."""

from __future__ import annotations

import shutil

import pytest

from auditapp.errors import InvalidInput
from auditapp.models import AuditEvent, Control, ControlVersion
from auditapp.services import catalog
from tests.factories import make_user


@pytest.fixture
def controls_dir(app, tmp_path):
    """A writable copy of the shipped catalog."""
    target = tmp_path / "controls"
    shutil.copytree(app.config["CATALOG_PATH"], target)
    return target


def test_sync_adds_every_control_with_a_version(session, controls_dir):
    """A first sync adds all controls at version 1, each with its text kept as history."""
    result = catalog.sync(session, "test", controls_dir)
    session.commit()
    count = session.query(Control).count()
    assert 25 <= count <= 40 and len(result.added) == count
    assert session.query(ControlVersion).count() == count
    assert session.query(AuditEvent).filter_by(action="control.add").count() == count
    assert catalog.get_setting(session, catalog.CATALOG_VERSION_KEY) == result.version


def test_second_sync_changes_nothing(session, controls_dir):
    """Sync is idempotent: a second run reports 0 changes and records no audit events."""
    catalog.sync(session, "test", controls_dir)
    session.commit()
    events = session.query(AuditEvent).count()
    result = catalog.sync(session, "test", controls_dir)
    assert result.changes == 0 and result.unchanged == session.query(Control).count()
    assert session.query(AuditEvent).count() == events


def test_changed_text_bumps_the_version_and_keeps_history(session, controls_dir):
    """Editing a control's text makes a new version; the old text stays in history."""
    catalog.sync(session, "test", controls_dir)
    path = controls_dir / "03-organizational.yaml"
    original = catalog.get(session, "ORG-01")
    old_hash = original.content_hash
    path.write_text(
        path.read_text("utf-8").replace("frequency: annual", "frequency: quarterly", 1), "utf-8"
    )
    result = catalog.sync(session, "test", controls_dir)
    assert result.updated == ["ORG-01"]
    control = catalog.get(session, "ORG-01")
    assert control.version == 2 and control.frequency == "quarterly"
    history = catalog.versions(session, control)
    assert [v.version for v in history] == [2, 1] and history[1].content_hash == old_hash


def test_removed_control_is_retired_not_deleted(session, controls_dir):
    """A control gone from the files is retired with its history; putting it back restores it."""
    catalog.sync(session, "test", controls_dir)
    path = controls_dir / "07-external-environment.yaml"
    saved = path.read_text("utf-8")
    head, _sep, _rest = saved.partition("\n  - id: EXT-02")
    path.write_text(head + "\n", "utf-8")
    result = catalog.sync(session, "test", controls_dir)
    assert result.retired == ["EXT-02"]
    retired = catalog.get(session, "EXT-02")
    assert not retired.active and retired.retired_at is not None
    assert "EXT-02" not in [c.code for c in catalog.search(session, catalog.ControlFilter())]
    path.write_text(saved, "utf-8")
    result = catalog.sync(session, "test", controls_dir)
    assert result.restored == ["EXT-02"] and catalog.get(session, "EXT-02").active


def test_invalid_catalog_is_never_partly_synced(session, controls_dir):
    """One bad file anywhere means nothing at all is written."""
    (controls_dir / "local-bad.yaml").write_text("controls:\n  - id: bad id\n", "utf-8")
    with pytest.raises(catalog.CatalogInvalid) as info:
        catalog.sync(session, "test", controls_dir)
    assert any("local-bad.yaml" in str(e) for e in info.value.catalog.errors)
    session.rollback()
    assert session.query(Control).count() == 0


def test_statement_of_applicability_round_trip(session, controls_dir):
    """Not applicable needs a justification; it is kept, audited, and can be reversed."""
    catalog.sync(session, "test", controls_dir)
    admin = make_user(session, roles=["admin"])
    control = catalog.get(session, "EXT-01")
    with pytest.raises(InvalidInput) as info:
        catalog.update_settings(
            session,
            admin,
            control,
            owner_email=None,
            frequency_override=None,
            applicable=False,
            justification="  ",
        )
    assert "na_justification" in info.value.errors
    reason = "海外で個人データを取り扱っておらず、外国の委託先もないため"
    catalog.update_settings(
        session,
        admin,
        control,
        owner_email=None,
        frequency_override=None,
        applicable=False,
        justification=reason,
    )
    session.commit()
    control = catalog.get(session, "EXT-01")
    assert not control.applicable and control.na_justification == reason
    assert control.na_decided_by.id == admin.id and control.na_decided_at is not None
    event = session.query(AuditEvent).filter_by(action="control.settings").one()
    assert reason in event.after_json and event.object_id == "EXT-01"
    catalog.update_settings(
        session,
        admin,
        control,
        owner_email=None,
        frequency_override=None,
        applicable=True,
        justification=None,
    )
    assert catalog.get(session, "EXT-01").applicable
    assert catalog.get(session, "EXT-01").na_justification is None


def test_owner_must_be_an_active_manager(session, controls_dir):
    """Only an active person holding the manager role can own a control."""
    catalog.sync(session, "test", controls_dir)
    employee = make_user(session, roles=["employee"])
    manager = make_user(session, roles=["manager"])
    control = catalog.get(session, "ORG-01")
    with pytest.raises(InvalidInput) as info:
        catalog.update_settings(
            session,
            "test",
            control,
            owner_email=employee.email,
            frequency_override=None,
            applicable=True,
            justification=None,
        )
    assert "owner" in info.value.errors
    catalog.update_settings(
        session,
        "test",
        control,
        owner_email=manager.email.upper(),
        frequency_override="monthly",
        applicable=True,
        justification=None,
    )
    assert control.owner.id == manager.id and control.effective_frequency == "monthly"
    with pytest.raises(InvalidInput):
        catalog.update_settings(
            session,
            "test",
            control,
            owner_email=manager.email,
            frequency_override="weekly",
            applicable=True,
            justification=None,
        )


def test_sync_keeps_the_organizations_choices(session, controls_dir):
    """A changed catalog text never resets owner, frequency override or applicability."""
    catalog.sync(session, "test", controls_dir)
    manager = make_user(session, roles=["manager"])
    control = catalog.get(session, "ORG-01")
    catalog.update_settings(
        session,
        "test",
        control,
        owner_email=manager.email,
        frequency_override="semiannual",
        applicable=True,
        justification=None,
    )
    path = controls_dir / "03-organizational.yaml"
    path.write_text(path.read_text("utf-8").replace("責任", "責任 ", 1), "utf-8")
    catalog.sync(session, "test", controls_dir)
    control = catalog.get(session, "ORG-01")
    assert control.owner.id == manager.id and control.frequency_override == "semiannual"


def test_search_covers_japanese_and_english(session, controls_dir):
    """Search finds controls by Japanese text, English text and id."""
    catalog.sync(session, "test", controls_dir)
    by_ja = catalog.search(session, catalog.ControlFilter(q="秘密保持"))
    by_en = catalog.search(session, catalog.ControlFilter(q="confidentiality"))
    by_id = catalog.search(session, catalog.ControlFilter(q="tec-03"))
    assert by_ja and by_en and [c.code for c in by_id] == ["TEC-03"]
    assert {c.category for c in by_ja} & {"human"}


def test_profile_defaults_to_standard_and_is_audited(session):
    """The profile is standard until an admin chooses SME; the change is audited."""
    assert catalog.profile(session).value == "standard"
    catalog.set_profile(session, "test", "sme")
    assert catalog.profile(session).value == "sme"
    assert session.query(AuditEvent).filter_by(action="setting.update").count() == 1
    with pytest.raises(InvalidInput):
        catalog.set_profile(session, "test", "large")


def test_category_counts_and_unowned(session, controls_dir):
    """Counts per category in policy order; unowned applicable controls are counted."""
    catalog.sync(session, "test", controls_dir)
    counts = catalog.category_counts(session)
    assert list(counts)[:2] == ["basic_policy", "handling_rules"]
    assert sum(c["total"] for c in counts.values()) == session.query(Control).count()
    assert catalog.unowned_count(session) == session.query(Control).count()
