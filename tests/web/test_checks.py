"""Checks over the web: the check page, attestation, review, findings, dashboards, home."""

from __future__ import annotations

import io
from datetime import date

import pytest
from sqlalchemy import select

from auditapp.extensions import db
from auditapp.models import Check, Finding
from auditapp.services import catalog, checks
from tests.conftest import csrf_token, post

TODAY = date.today()


@pytest.fixture
def check_ids(app, users):
    """TEC-04 (monthly) owned by the manager since two months ago; its checks materialized."""
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        control = catalog.get(db.session, "TEC-04")
        catalog.update_settings(
            db.session,
            "test",
            control,
            owner_email=users["manager"],
            frequency_override=None,
            applicable=True,
            justification=None,
        )
        control.checks_from = date(TODAY.year - 1, TODAY.month, 1)
        checks.materialize(db.session, TODAY, checks.CheckSettings())
        db.session.commit()
        rows = db.session.scalars(
            select(Check).where(Check.period_start <= TODAY).order_by(Check.period_start)
        ).all()
        return [c.id for c in rows]


def _attest(client, check_id, **form):
    data = {"result": "not_applicable", "statement": "当期は対象なし"} | form
    return post(client, f"/checks/{check_id}/attest", data, headers={"Accept-Language": "en"})


def test_owner_sees_and_attests(app, as_role, check_ids):
    """The owner sees the procedure, attests, and the attestation is locked and shown."""
    client = as_role("manager")
    page = client.get(f"/checks/{check_ids[0]}", headers={"Accept-Language": "ja"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "点検手順" in html and "確認報告を提出" in html
    assert _attest(client, check_ids[0]).status_code == 302
    html = client.get(f"/checks/{check_ids[0]}").get_data(as_text=True)
    assert "当期は対象なし" in html and "確認報告を提出" not in html
    assert _attest(client, check_ids[0]).status_code == 409


def test_effective_without_evidence_keeps_the_form(as_role, check_ids):
    """'Effective' without required evidence is refused with the reason; input is kept."""
    response = _attest(
        as_role("manager"), check_ids[0], result="effective", statement="ログを確認した"
    )
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "needs evidence" in html and "ログを確認した" in html


def test_effective_with_evidence(app, as_role, check_ids):
    """After attaching evidence on the check page, 'effective' is accepted."""
    client = as_role("manager")
    response = client.post(
        "/evidence/upload",
        data={
            "csrf_token": csrf_token(client, "/"),
            "link": f"check:{check_ids[0]}",
            "file": (io.BytesIO(b"%PDF-1.4\nlog review\n"), "log.pdf"),
        },
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 201
    assert _attest(client, check_ids[0], result="effective").status_code == 302
    with app.app_context():
        attestation = db.session.get(Check, check_ids[0]).current_attestation
        assert (
            attestation.result == "effective" and attestation.evidence[0]["filename"] == "log.pdf"
        )


def test_statement_too_long(as_role, check_ids):
    """A statement over 4,000 characters is refused."""
    response = _attest(as_role("manager"), check_ids[0], statement="長" * 4001)
    assert response.status_code == 400 and "too long" in response.get_data(as_text=True)


def test_someone_elses_check_is_404(app, as_role, check_ids):
    """Another manager neither sees nor attests a check they do not own."""
    from tests.conftest import login
    from tests.factories import make_user

    with app.app_context():
        make_user(db.session, roles=["manager"], email="other@example.jp")
        db.session.commit()
    other = app.test_client()
    login(other, "other@example.jp")
    assert other.get(f"/checks/{check_ids[0]}").status_code == 404
    assert _attest(other, check_ids[0]).status_code == 404


def test_not_yet_open_check(app, as_role, check_ids):
    """A check whose period has not started cannot be attested."""
    with app.app_context():
        future = db.session.scalar(select(Check).where(Check.period_start > TODAY))
    response = _attest(as_role("manager"), future.id)
    assert response.status_code == 400 and "opens on" in response.get_data(as_text=True)


def test_review_flow_and_own_attestation(app, as_role, users, check_ids):
    """An admin returns with a comment, the owner re-attests, the admin accepts; an admin
    cannot review their own attestation."""
    manager, admin = as_role("manager"), as_role("admin")
    _attest(manager, check_ids[0])
    response = post(
        admin,
        f"/checks/{check_ids[0]}/review",
        {"decision": "returned", "comment": ""},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 400
    post(
        admin,
        f"/checks/{check_ids[0]}/review",
        {"decision": "returned", "comment": "根拠を追記してください"},
    )
    home = manager.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Returned to you for rework" in home
    _attest(manager, check_ids[0], statement="追記しました")
    assert (
        post(admin, f"/checks/{check_ids[0]}/review", {"decision": "accepted"}).status_code == 302
    )
    with app.app_context():
        assert db.session.get(Check, check_ids[0]).status == "accepted"
        # The manager is also made an admin: they still cannot review their own attestation.
        from auditapp.services import users as users_service

        person = users_service.by_email(db.session, users["manager"])
        users_service.set_roles(db.session, "test", person, "manager;admin")
        db.session.commit()
    _attest(manager, check_ids[1])
    response = post(
        manager,
        f"/checks/{check_ids[1]}/review",
        {"decision": "accepted"},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 403
    assert "your own attestation" in response.get_data(as_text=True)


def test_deficient_opens_finding_then_closure(app, as_role, check_ids):
    """A deficient attestation opens a finding; closing needs evidence and an admin."""
    manager, admin = as_role("manager"), as_role("admin")
    response = _attest(
        manager,
        check_ids[0],
        result="deficient",
        statement="ログ未確認",
        finding_description="ログ分析が行われていない",
        finding_risk="high",
        finding_remediation_plan="月次で分析する",
        finding_due_date="2000-01-01",
    )
    assert response.status_code == 400 and "past" in response.get_data(as_text=True)
    _attest(
        manager,
        check_ids[0],
        result="deficient",
        statement="ログ未確認",
        finding_description="ログ分析が行われていない",
        finding_risk="high",
        finding_remediation_plan="月次で分析する",
        finding_due_date="2099-12-31",
    )
    with app.app_context():
        finding_id = db.session.scalar(select(Finding.id))
    assert "ログ分析が行われていない" in manager.get("/findings/").get_data(as_text=True)
    response = post(
        manager,
        f"/findings/{finding_id}/close",
        {"closing_note": "対応済み"},
        headers={"Accept-Language": "en"},
    )
    assert response.status_code == 400 and "attach evidence" in response.get_data(as_text=True)
    manager.post(
        "/evidence/upload",
        data={
            "csrf_token": csrf_token(manager, "/"),
            "link": f"finding:{finding_id}",
            "file": (io.BytesIO(b"%PDF-1.4\nfixed\n"), "fix.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert (
        post(manager, f"/findings/{finding_id}/close", {"closing_note": "対応済み"}).status_code
        == 302
    )
    assert (
        post(admin, f"/findings/{finding_id}/review", {"decision": "accepted"}).status_code == 302
    )
    with app.app_context():
        assert db.session.get(Finding, finding_id).status == "closed"


def test_dashboard_for_admin_and_auditor(as_role, check_ids):
    """The dashboard shows status by category, the heat map and the overdue list."""
    for role in ("admin", "auditor"):
        response = as_role(role).get("/dashboard", headers={"Accept-Language": "en"})
        html = response.get_data(as_text=True)
        assert response.status_code == 200
        assert "Status by category" in html and "<svg" in html and "Overdue checks" in html
    assert as_role("manager").get("/dashboard").status_code == 403


def test_check_list_filters(as_role, check_ids):
    """The check list filters by status and fiscal year and refuses a bad year."""
    client = as_role("auditor")
    assert "TEC-04" in client.get("/checks/?status=open").get_data(
        as_text=True
    ) or "TEC-04" in client.get("/checks/?status=overdue").get_data(as_text=True)
    assert client.get("/checks/?fy=FYabc").status_code == 400


def test_control_page_shows_check_history(as_role, check_ids):
    """A control's page lists its checks."""
    html = as_role("admin").get("/catalog/controls/TEC-04").get_data(as_text=True)
    assert "/checks/" in html and "FY" in html


@pytest.mark.parametrize("role", ["admin", "manager", "auditor"])
def test_buttons_shown_exactly_when_the_service_allows(as_role, check_ids, role):
    """The attest and review forms appear exactly for those the service lets through
    (one rule in access.py for both)."""
    client = as_role(role)
    url = f"/checks/{check_ids[0]}"
    shown = f'action="{url}/attest"' in client.get(url).get_data(as_text=True)
    assert shown is (role == "manager")
    assert (_attest(client, check_ids[0]).status_code == 302) is shown
    if role != "manager":
        _attest(as_role("manager"), check_ids[0])
    shown = f'action="{url}/review"' in client.get(url).get_data(as_text=True)
    assert shown is (role == "admin")
    response = post(client, f"{url}/review", {"decision": "accepted"})
    assert (response.status_code == 302) is shown
