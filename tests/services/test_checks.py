"""Checks: exactly-once generation, attestation, review, findings, overdue marking."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from auditapp.errors import Conflict, Forbidden, InvalidInput, NotFound
from auditapp.extensions import db
from auditapp.models import AuditEvent, Check, Finding
from auditapp.services import catalog, checks
from tests.factories import make_evidence, make_user

TODAY = date(2026, 11, 27)
CFG = checks.CheckSettings()


@pytest.fixture
def setup(app, session):
    """The catalog synced; ORG-03 (quarterly) and TEC-04 (monthly) owned by a manager."""
    catalog.sync(session, "test", app.config["CATALOG_PATH"])
    manager = make_user(session, roles=["manager"], email="owner@example.jp")
    admin = make_user(session, roles=["admin"], email="boss@example.jp")
    for code in ("ORG-03", "TEC-04"):
        control = catalog.get(session, code)
        catalog.update_settings(
            session,
            "test",
            control,
            owner_email=manager.email,
            frequency_override=None,
            applicable=True,
            justification=None,
        )
        control.checks_from = date(2026, 4, 1)
    session.commit()
    return manager, admin


def _check(session, code: str, key: str) -> Check:
    control = catalog.get(session, code)
    return session.scalar(
        select(Check).where(Check.control_id == control.id, Check.period_key == key)
    )


def test_materialize_creates_each_period_once(session, setup):
    """Checks exist for every period from the first owned one to the next; a rerun adds none."""
    created = checks.materialize(session, TODAY, CFG)
    session.commit()
    keys = sorted(c.period_key for c in session.scalars(select(Check)))
    # ORG-03 quarterly: Q1..Q4 of FY2026 (Q4 is the next period); TEC-04 monthly: M01..M09.
    assert [k for k in keys if "Q" in k] == ["FY2026-Q1", "FY2026-Q2", "FY2026-Q3", "FY2026-Q4"]
    assert [k for k in keys if "-M" in k] == [f"FY2026-M{i:02d}" for i in range(1, 10)]
    assert created == len(keys)
    assert checks.materialize(session, TODAY, CFG) == 0
    check = _check(session, "ORG-03", "FY2026-Q1")
    assert check.due_date == date(2026, 7, 14)
    assert check.control_version == 1 and len(check.control_content_hash) == 64


def test_materialize_from_two_sessions_at_once(make_app):
    """Generating from two workers at the same moment creates each check exactly once."""
    app = make_app()
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        owner = make_user(db.session, roles=["manager"])
        for control in catalog.search(db.session, catalog.ControlFilter())[:10]:
            catalog.update_settings(
                db.session,
                "test",
                control,
                owner_email=owner.email,
                frequency_override="monthly",
                applicable=True,
                justification=None,
            )
            control.checks_from = date(2025, 4, 1)
        db.session.commit()
    barrier = threading.Barrier(2)
    errors = []

    def run():
        with app.app_context():
            try:
                barrier.wait(timeout=10)
                checks.materialize(db.session, TODAY, CFG)
                db.session.commit()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context():
        total = db.session.scalar(select(func.count()).select_from(Check))
        distinct = db.session.scalar(
            select(func.count()).select_from(
                select(Check.control_id, Check.period_key).distinct().subquery()
            )
        )
    assert total == distinct == 10 * 21  # FY2025 M01 .. FY2026 M09


def test_unowned_or_not_applicable_controls_get_no_checks(session, setup):
    """Only owned, applicable, active controls are checked."""
    control = catalog.get(session, "TEC-04")
    catalog.update_settings(
        session,
        "test",
        control,
        owner_email=None,
        frequency_override=None,
        applicable=False,
        justification="対象システムなし",
    )
    checks.materialize(session, TODAY, CFG)
    assert all(c.control.code == "ORG-03" for c in session.scalars(select(Check)))


def _attest(session, owner, check, result="effective", **kw):
    kw.setdefault("statement", "手順どおり確認しました")
    kw.setdefault("finding", None)
    kw.setdefault("today", TODAY)
    return checks.attest(session, owner, check, result=result, **kw)


def test_attest_effective_needs_evidence(app, session, setup):
    """'Effective' on a control that needs evidence is refused until evidence is attached."""
    owner, _admin = setup
    checks.materialize(session, TODAY, CFG)
    check = _check(session, "ORG-03", "FY2026-Q2")
    with pytest.raises(InvalidInput) as info:
        _attest(session, owner, check)
    assert "evidence" in info.value.errors
    item = make_evidence(app, session, link=f"check:{check.id}")
    attestation = _attest(session, owner, check)
    session.commit()
    assert check.status == "attested"
    assert attestation.evidence == [
        {"id": item.id, "sha256": item.sha256, "filename": "factory.pdf"}
    ]
    assert "owner@example.jp" in attestation.attester_name
    assert session.query(AuditEvent).filter_by(action="check.attest").count() == 1


def test_attest_rules(session, setup):
    """Someone else's check is 404, a future check is refused, a long statement too,
    and a second attestation conflicts."""
    owner, admin = setup
    checks.materialize(session, TODAY, CFG)
    q2 = _check(session, "ORG-03", "FY2026-Q2")
    with pytest.raises(NotFound):
        _attest(session, admin, q2, "not_applicable")
    q4 = _check(session, "ORG-03", "FY2026-Q4")
    with pytest.raises(InvalidInput, match="opens on 2027-01-01"):
        _attest(session, owner, q4, "not_applicable")
    with pytest.raises(InvalidInput) as info:
        _attest(session, owner, q2, "not_applicable", statement="x" * 4001)
    assert "statement" in info.value.errors
    _attest(session, owner, q2, "not_applicable")
    with pytest.raises(Conflict):
        _attest(session, owner, q2, "not_applicable")


def test_deficient_opens_a_finding_with_a_valid_due_date(session, setup):
    """A deficient result needs a finding with a due date that is not in the past."""
    owner, _admin = setup
    checks.materialize(session, TODAY, CFG)
    check = _check(session, "TEC-04", "FY2026-M07")
    base = {"description": "ログ分析が未実施", "risk": "high", "remediation_plan": "手順を整備"}
    with pytest.raises(InvalidInput) as info:
        _attest(session, owner, check, "deficient", finding=base)
    assert "finding_due_date" in info.value.errors
    with pytest.raises(InvalidInput) as info:
        _attest(session, owner, check, "deficient", finding=base | {"due_date": "2026-11-01"})
    assert "past" in str(info.value.errors["finding_due_date"])
    _attest(session, owner, check, "deficient", finding=base | {"due_date": "2026年12月25日"})
    finding = session.scalar(select(Finding))
    assert finding.due_date == date(2026, 12, 25) and finding.owner_id == owner.id
    assert finding.check_id == check.id and finding.risk == "high"


def test_review_accept_return_and_segregation(session, setup):
    """The attester cannot review; a return needs a comment and reopens the check."""
    owner, admin = setup
    owner.role_rows.append(type(owner.role_rows[0])(role="admin"))
    checks.materialize(session, TODAY, CFG)
    check = _check(session, "TEC-04", "FY2026-M06")
    _attest(session, owner, check, "not_applicable")
    with pytest.raises(Forbidden):
        checks.review(session, owner, check, decision="accepted", comment=None)
    with pytest.raises(InvalidInput) as info:
        checks.review(session, admin, check, decision="returned", comment="")
    assert "comment" in info.value.errors
    checks.review(session, admin, check, decision="returned", comment="証跡を添付してください")
    assert check.status == "returned"
    _attest(session, owner, check, "not_applicable", statement="再確認しました")
    assert [a.sequence for a in check.attestations] == [1, 2]
    checks.review(session, admin, check, decision="accepted", comment=None)
    assert check.status == "accepted"
    with pytest.raises(Conflict):
        checks.review(session, admin, check, decision="accepted", comment=None)


def test_concurrent_submissions_one_wins(make_app):
    """Two submissions of the same check at once: one succeeds, the other gets a Conflict."""
    app = make_app()
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        owner = make_user(db.session, roles=["manager"], email="o@example.jp")
        control = catalog.get(db.session, "TEC-04")
        catalog.update_settings(
            db.session,
            "test",
            control,
            owner_email=owner.email,
            frequency_override=None,
            applicable=True,
            justification=None,
        )
        control.checks_from = date(2026, 10, 1)
        checks.materialize(db.session, TODAY, CFG)
        db.session.commit()
        check_id = _check(db.session, "TEC-04", "FY2026-M07").id
        owner_id = owner.id
    barrier = threading.Barrier(2)
    outcomes = []

    def submit():
        barrier.wait(timeout=10)
        with app.app_context():
            try:
                user = db.session.get(type(owner), owner_id)
                check = db.session.get(Check, check_id)
                _attest(db.session, user, check, "not_applicable")
                db.session.commit()
                outcomes.append("ok")
            except Conflict:
                db.session.rollback()
                outcomes.append("conflict")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict", "ok"]
    with app.app_context():
        assert len(db.session.get(Check, check_id).attestations) == 1


def test_finding_closure_needs_evidence_and_review(app, session, setup):
    """Closing a finding needs a note and evidence, and an admin's acceptance."""
    owner, admin = setup
    checks.materialize(session, TODAY, CFG)
    check = _check(session, "TEC-04", "FY2026-M07")
    _attest(
        session,
        owner,
        check,
        "deficient",
        finding={
            "description": "d",
            "risk": "low",
            "remediation_plan": "p",
            "due_date": "2026-12-31",
        },
    )
    finding = session.scalar(select(Finding))
    with pytest.raises(InvalidInput) as info:
        checks.submit_closure(session, owner, finding, "直しました")
    assert "evidence" in info.value.errors
    make_evidence(app, session, link=f"finding:{finding.id}")
    checks.submit_closure(session, owner, finding, "直しました")
    assert finding.status == "closure_submitted"
    with pytest.raises(Forbidden):
        checks.review_closure(session, owner, finding, decision="accepted", comment=None)
    checks.review_closure(session, admin, finding, decision="returned", comment="不十分")
    assert finding.status == "open"
    checks.submit_closure(session, owner, finding, "追加で直しました")
    checks.review_closure(session, admin, finding, decision="accepted", comment=None)
    assert finding.status == "closed" and finding.closed_at is not None


def test_mark_overdue_once(session, setup):
    """Checks and findings past due are marked once, with one audit entry per run."""
    checks.materialize(session, TODAY, CFG)
    first = checks.mark_overdue(session, "test", TODAY)
    assert first[0] > 0
    assert checks.mark_overdue(session, "test", TODAY) == (0, 0)
    overdue = checks.search(session, "cli", checks.CheckFilter(status="overdue"), TODAY)[1]
    assert overdue == first[0]
    later = TODAY + timedelta(days=40)
    assert checks.mark_overdue(session, "test", later)[0] > 0
