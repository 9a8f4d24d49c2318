"""Evidence on attested and accepted checks and on submitted closures is refused with the
reason (issue 11 item 12): what was attested and reviewed stays what the page shows."""

from __future__ import annotations

import io
from datetime import date

import pytest
from sqlalchemy import select

from auditapp.errors import InvalidInput
from auditapp.extensions import db
from auditapp.models import Check, Evidence, EvidenceLink
from auditapp.services import catalog, checks, evidence
from tests.conftest import csrf_token, post
from tests.factories import make_check_and_finding, make_evidence

TODAY = date.today()
PDF = b"%PDF-1.4\nlocked check\n"


@pytest.fixture
def check_id(app, users):
    """TEC-04 owned by the manager; the id of its check for the period in progress."""
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
        control.checks_from = date(TODAY.year, TODAY.month, 1)
        checks.materialize(db.session, TODAY, checks.CheckSettings())
        db.session.commit()
        return db.session.scalar(
            select(Check.id).where(Check.control_id == control.id, Check.period_start <= TODAY)
        )


def _upload(client, link, **fields):
    return client.post(
        "/evidence/upload",
        data={
            "csrf_token": csrf_token(client, "/"),
            "link": link,
            "file": (io.BytesIO(PDF + str(fields).encode()), "late.pdf"),
            **fields,
        },
        headers={"Accept": "application/json", "Accept-Language": "en"},
        content_type="multipart/form-data",
    )


def _attest(client, check_id):
    data = {"result": "not_applicable", "statement": "当期は対象なし"}
    return post(client, f"/checks/{check_id}/attest", data)


def _review(client, check_id, decision, comment=""):
    return post(client, f"/checks/{check_id}/review", {"decision": decision, "comment": comment})


def _links(app, check_id) -> int:
    with app.app_context():
        return len(
            db.session.scalars(
                select(EvidenceLink).where(
                    EvidenceLink.object_type == "check", EvidenceLink.object_id == str(check_id)
                )
            ).all()
        )


def test_attested_and_accepted_checks_refuse_new_evidence(app, as_role, check_id):
    """Once attested (awaiting review) and once accepted, new evidence for the check is
    refused with the reason; nothing is linked."""
    manager, admin = as_role("manager"), as_role("admin")
    assert _upload(manager, f"check:{check_id}").status_code == 201
    assert _attest(manager, check_id).status_code == 302
    for who in (manager, admin):
        response = _upload(who, f"check:{check_id}")
        assert response.status_code == 400
        assert "its evidence is locked" in response.json["errors"]["link"]
    assert _review(admin, check_id, "accepted").status_code == 302
    response = _upload(manager, f"check:{check_id}")
    assert response.status_code == 400 and "locked" in response.json["errors"]["link"]
    assert _links(app, check_id) == 1


def test_a_returned_check_takes_evidence_again(app, as_role, check_id):
    """A returned check is open again: evidence can be added before the next attestation."""
    manager, admin = as_role("manager"), as_role("admin")
    _attest(manager, check_id)
    _review(admin, check_id, "returned", "証跡を添付してください")
    assert _upload(manager, f"check:{check_id}").status_code == 201
    assert _links(app, check_id) == 1


def test_check_page_says_so_and_offers_no_upload(as_role, check_id):
    """The attested check's page explains the lock and has no upload form; before, the
    owner had one."""
    manager = as_role("manager")
    html = manager.get(f"/checks/{check_id}", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    assert 'name="link" value="check:' in html and "its evidence is locked" not in html
    _attest(manager, check_id)
    html = manager.get(f"/checks/{check_id}", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    assert 'name="link" value="check:' not in html and "its evidence is locked" in html
    html = manager.get(f"/checks/{check_id}", headers={"Accept-Language": "ja"}).get_data(
        as_text=True
    )
    assert "証跡は確認報告とともに固定されています" in html


def test_no_new_version_of_evidence_an_accepted_check_holds(app, as_role, check_id):
    """A new version would replace what the accepted check shows: the item's page offers
    none and explains why; a forged upload is refused and the old version stays current."""
    manager, admin = as_role("manager"), as_role("admin")
    item_id = _upload(manager, f"check:{check_id}").json["id"]
    _attest(manager, check_id)
    _review(admin, check_id, "accepted")
    page = manager.get(f"/evidence/{item_id}", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert "Upload a new version" not in html and "its evidence is locked" in html
    response = _upload(manager, "", supersedes=str(item_id))
    assert response.status_code == 400 and "locked" in response.json["errors"]["link"]
    with app.app_context():
        assert db.session.get(Evidence, item_id).superseded_at is None


def test_attestation_between_plan_and_record_is_caught(app, session):
    """An attestation landing while the bytes are being stored (after the request was
    checked) still refuses the late evidence: the check is read again before linking."""
    catalog.sync(session, "test", app.config["CATALOG_PATH"])
    check, _finding = make_check_and_finding(session, "TEC-04")
    owner = check.control.owner
    plan = evidence.plan_upload(
        session,
        owner,
        links=[f"check:{check.id}"],
        description=None,
        valid_until=None,
        supersedes_id=None,
        today=TODAY,
    )
    checks.attest(
        session,
        owner,
        check,
        result="not_applicable",
        statement="対象なし",
        finding=None,
        today=max(TODAY, check.period_start),
    )
    session.commit()
    with pytest.raises(InvalidInput, match="locked"):
        evidence.store_upload(
            session,
            app.extensions["evidence_store"],
            owner,
            plan,
            io.BytesIO(PDF),
            "late.pdf",
            today=TODAY,
            retention_years=5,
        )
    session.rollback()
    assert session.query(Evidence).count() == 0


def test_submitted_closure_refuses_new_evidence(app, session):
    """A finding whose closure awaits review keeps the evidence that was submitted."""
    catalog.sync(session, "test", app.config["CATALOG_PATH"])
    _check, finding = make_check_and_finding(session, "ORG-01")
    make_evidence(app, session, link=f"finding:{finding.id}")
    checks.submit_closure(session, finding.owner, finding, "直しました")
    session.commit()
    with pytest.raises(InvalidInput) as info:
        make_evidence(app, session, data=PDF, link=f"finding:{finding.id}")
    assert "submitted for closure" in str(info.value.errors["link"])
