"""The catalog pages: browse, search, a control's page, the admin's settings."""

from __future__ import annotations

import pytest

from auditapp.extensions import db
from auditapp.models import AuditEvent
from auditapp.services import catalog
from tests.conftest import post


@pytest.fixture(autouse=True)
def synced(app):
    """The shipped catalog, synced."""
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        db.session.commit()


def test_catalog_lists_categories_in_policy_order(as_role):
    """The catalog shows the categories in the policy's order with their clause."""
    html = (
        as_role("employee")
        .get("/catalog/", headers={"Accept-Language": "ja"})
        .get_data(as_text=True)
    )
    positions = [html.index(clause) for clause in ("第2条の2(1)", "第2条の2(3)", "第2条の2(7)")]
    assert positions == sorted(positions)
    assert "組織的安全管理措置" in html


def test_search_and_category_filter(as_role):
    """Searching narrows the list; a category filter shows only that category."""
    client = as_role("auditor")
    html = client.get("/catalog/?q=TEC-03").get_data(as_text=True)
    assert "TEC-03" in html and "ORG-01" not in html
    html = client.get("/catalog/?category=human").get_data(as_text=True)
    assert "HUM-01" in html and "TEC-01" not in html


def test_control_page_follows_language_and_profile(app, as_role):
    """The control page shows the text in the user's language and the profile's method."""
    client = as_role("manager")
    with app.app_context():
        content = catalog.get(db.session, "ORG-03").content
    html = client.get("/catalog/controls/ORG-03", headers={"Accept-Language": "en"}).get_data(
        as_text=True
    )
    assert content["title"]["en"] in html
    assert content["methods"]["standard"]["en"][:40] in html
    with app.app_context():
        catalog.set_profile(db.session, "test", "sme")
        db.session.commit()
    html = client.get("/catalog/controls/org-03", headers={"Accept-Language": "ja"}).get_data(
        as_text=True
    )
    assert content["methods"]["sme"]["ja"][:30] in html


def test_unknown_control_is_404(as_role):
    """An unknown control id answers 404."""
    assert as_role("employee").get("/catalog/controls/NOPE-99").status_code == 404


def test_admin_assigns_owner_and_marks_not_applicable(app, as_role, users):
    """The admin sets an owner and a justified not-applicable; the page and trail show it."""
    client = as_role("admin")
    response = post(
        client,
        "/catalog/controls/EXT-01/settings",
        {
            "owner": users["manager"],
            "frequency_override": "",
            "applicable": "0",
            "na_justification": "",
        },
    )
    assert response.status_code == 400  # justification missing
    assert 'value="manager@example.jp" selected' in response.get_data(as_text=True)
    response = post(
        client,
        "/catalog/controls/EXT-01/settings",
        {
            "owner": users["manager"],
            "frequency_override": "quarterly",
            "applicable": "0",
            "na_justification": "国外での取扱いなし",
        },
    )
    assert response.status_code == 302
    html = client.get("/catalog/controls/EXT-01").get_data(as_text=True)
    assert "国外での取扱いなし" in html
    with app.app_context():
        control = catalog.get(db.session, "EXT-01")
        assert control.owner.email == users["manager"] and not control.applicable
        assert db.session.query(AuditEvent).filter_by(action="control.settings").count() == 1


def test_unowned_controls_are_flagged_on_admin_home(as_role):
    """The admin's home page says how many applicable controls have no owner."""
    html = as_role("admin").get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "applicable controls have no owner" in html
    assert "/catalog/?unowned=1" in html


def test_profile_change_by_admin(app, as_role):
    """The admin switches the organization to the SME profile."""
    response = post(as_role("admin"), "/catalog/profile", {"profile": "sme"})
    assert response.status_code == 302
    with app.app_context():
        assert catalog.profile(db.session).value == "sme"
