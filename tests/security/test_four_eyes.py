"""Segregation of duties (ASVS 5.0 2.3.5, SECURITY.md item 6): no one approves their own
work, whatever roles they hold: attestations, finding closures, training exemptions."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text

from auditapp import access, create_app
from auditapp.errors import Forbidden
from auditapp.extensions import db
from auditapp.models import Finding
from auditapp.services import catalog, checks, dashboard, training, users
from tests.conftest import login, post
from tests.factories import make_check_and_finding, make_course, make_evidence, make_user

TODAY = date(2026, 11, 27)


def _admin_manager(session, email=None):
    """A person who is both an admin and a manager (who may own controls)."""
    return make_user(session, roles=["admin", "manager"], email=email)


def _submitted(app, session, submitter, finding):
    """Evidence of the fix attached and the closure submitted by `submitter`."""
    make_evidence(app, session, link=f"finding:{finding.id}")
    checks.submit_closure(session, submitter, finding, "様式を改めました")
    return finding


@pytest.fixture
def synced(app, session):
    """The shipped catalog, synced."""
    catalog.sync(session, "test", app.config["CATALOG_PATH"])
    session.commit()


def test_admin_owner_cannot_accept_their_own_closure(app, session, synced):
    """The issue's bypass: an admin who owns the finding submits its closure and cannot
    then accept (or return) it; another admin can."""
    boss = _admin_manager(session)
    _check, finding = make_check_and_finding(session, "ORG-01", owner=boss, today=TODAY)
    _submitted(app, session, boss, finding)
    assert finding.closure_submitted_by_id == boss.id
    for decision in ("accepted", "returned"):
        with pytest.raises(Forbidden, match="your own closure"):
            checks.review_closure(session, boss, finding, decision=decision, comment="x")
    assert finding.status == "closure_submitted"
    other = make_user(session, roles=["admin"])
    checks.review_closure(session, other, finding, decision="accepted", comment=None)
    assert finding.status == "closed" and finding.reviewer_id == other.id


def test_submitter_who_is_not_the_owner_cannot_review(app, session, synced):
    """The control's owner (an admin) submits the closure of a finding someone else owns:
    they cannot decide on it, and neither can the finding's owner (also an admin)."""
    owner = _admin_manager(session)
    _check, finding = make_check_and_finding(session, "ORG-01", owner=owner, today=TODAY)
    control_owner = _admin_manager(session)
    catalog.update_settings(
        session,
        "test",
        finding.control,
        owner_email=control_owner.email,
        frequency_override=None,
        applicable=True,
        justification=None,
    )
    _submitted(app, session, control_owner, finding)
    assert finding.owner_id == owner.id and finding.closure_submitted_by_id == control_owner.id
    for person in (control_owner, owner):
        assert not access.may_review_closure(person, finding)
        with pytest.raises(Forbidden):
            checks.review_closure(session, person, finding, decision="accepted", comment=None)
    third = make_user(session, roles=["admin"])
    assert access.may_review_closure(third, finding)


def test_closure_review_over_the_web(app):
    """The finding page shows no review form to the admin who submitted; a forged POST
    is refused with 403 and the finding stays submitted."""
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        boss = _admin_manager(db.session, email="boss@example.jp")
        _check, finding = make_check_and_finding(
            db.session, "ORG-01", owner=boss, today=date.today()
        )
        _submitted(app, db.session, boss, finding)
        db.session.commit()
        finding_id = finding.id
    client = app.test_client()
    login(client, "boss@example.jp")
    page = client.get(f"/findings/{finding_id}", headers={"Accept-Language": "en"})
    assert page.status_code == 200 and "Review the closure" not in page.get_data(as_text=True)
    response = post(
        client,
        f"/findings/{finding_id}/review",
        {"decision": "accepted"},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 403
    assert "your own closure" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Finding, finding_id).status == "closure_submitted"


def test_home_page_lists_only_closures_someone_else_submitted(app, session, synced):
    """An admin's "waiting for review" list leaves out closures they submitted."""
    boss = _admin_manager(session)
    _check, own = make_check_and_finding(session, "ORG-01", owner=boss, today=TODAY)
    _submitted(app, session, boss, own)
    manager = make_user(session, roles=["manager"])
    _check, theirs = make_check_and_finding(session, "ORG-02", owner=manager, today=TODAY)
    _submitted(app, session, manager, theirs)
    listed = dashboard.attention(session, boss, TODAY)["closures"]
    assert [f.id for f in listed] == [theirs.id]


def test_attester_never_reviews_whatever_their_roles(app, session, synced):
    """An admin who owns the control attests; the review is theirs to neither see nor do."""
    boss = _admin_manager(session)
    check, _finding = make_check_and_finding(session, "ORG-03", owner=boss, today=TODAY)
    check.control.evidence_required = False
    checks.attest(
        session,
        boss,
        check,
        result="not_applicable",
        statement="対象なし",
        finding=None,
        today=max(TODAY, check.period_start),
    )
    assert check.status == "attested"
    assert access.review_blocker(boss, check) == "own_attestation"
    with pytest.raises(Forbidden, match="your own attestation"):
        checks.review(session, boss, check, decision="accepted", comment=None)
    other = make_user(session, roles=["admin"])
    assert access.may_review(other, check)
    assert not access.may_review(make_user(session, roles=["auditor"]), check)
    assert not access.may_review("cli:root", check)  # a process signs nothing


def test_no_one_grants_themselves_an_exemption(session):
    """The rule: an admin exempts other people only; the command line may (recorded)."""
    admin = make_user(session, roles=["admin"])
    other = make_user(session)
    assert access.may_grant_exemption(admin, other)
    assert not access.may_grant_exemption(admin, admin)
    assert not access.may_grant_exemption(other, other)
    assert access.may_grant_exemption("cli:root", admin)


def test_grant_exemption_refuses_oneself(session):
    """Exempting yourself from a course is refused and records nothing."""
    admin = make_user(session, roles=["admin"])
    course = make_course(session)
    with pytest.raises(Forbidden):
        training.grant_exemption(session, admin, course, admin, "自分を免除")


def _closure_revision() -> tuple[str, str]:
    """This feature's migration and the one before it (found by its file, so the lead may
    renumber or re-chain it)."""
    from alembic.script import ScriptDirectory

    from auditapp import MIGRATIONS_DIR

    script = ScriptDirectory(str(MIGRATIONS_DIR))
    (rev,) = [
        r for r in script.walk_revisions() if r.path.endswith("_finding_closure_submitted_by.py")
    ]
    return rev.revision, rev.down_revision


def test_migration_fills_in_earlier_submitters_from_the_audit_trail(tmp_path, database_url):
    """Closures submitted before the column existed get their submitter from the audit
    trail when the migration runs, so the four-eyes rule holds for them too."""
    from flask_migrate import downgrade, upgrade

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
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        boss = _admin_manager(db.session)
        _check, finding = make_check_and_finding(db.session, "ORG-01", owner=boss, today=TODAY)
        _submitted(app, db.session, boss, finding)
        db.session.commit()
        finding_id, boss_id = finding.id, boss.id
        db.session.remove()
        revision, before = _closure_revision()
        downgrade(revision=before)
        upgrade(revision=revision)
        db.session.remove()
        submitted_by = db.session.execute(
            text("SELECT closure_submitted_by_id FROM finding WHERE id = :i"), {"i": finding_id}
        ).scalar()
        db.session.remove()
        db.engine.dispose()
    assert submitted_by == boss_id


def test_setting_roles_does_not_open_a_way_round(app, session, synced):
    """Making the finding's owner an admin after they submitted changes nothing."""
    owner = make_user(session, roles=["manager"])
    _check, finding = make_check_and_finding(session, "ORG-01", owner=owner, today=TODAY)
    _submitted(app, session, owner, finding)
    users.set_roles(session, "test", owner, "manager;admin")
    assert access.closure_review_blocker(owner, finding) == "own_closure"
    assert finding.due_date > TODAY - timedelta(days=1)
