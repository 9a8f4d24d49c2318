"""ASVS 8.2.1: every endpoint declares its roles and the declaration is enforced."""

from __future__ import annotations

import pytest

from auditapp import access
from auditapp.extensions import db
from auditapp.models import AuditEvent, Department, User
from auditapp.services import catalog
from tests.conftest import csrf_token
from tests.factories import make_check_and_finding, make_department, make_evidence, make_user

ROLES = ["admin", "manager", "employee", "auditor"]


def _sample_args(app) -> dict:
    """Values for URL parameters: a target person and department that tests may change."""
    with app.app_context():
        dept = make_department(db.session)
        target = make_user(db.session, roles=["employee"], department=dept)
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        item = make_evidence(app, db.session)
        check, finding = make_check_and_finding(db.session, "ORG-01")
        db.session.commit()
        return {
            "user_id": target.id,
            "dept_id": dept.id,
            "code": "ORG-01",
            "evidence_id": item.id,
            "check_id": check.id,
            "finding_id": finding.id,
            "job_id": "0" * 32,
        }


def _requests(app):
    """One (endpoint, method, url) per route of the app, static excluded."""
    args = _sample_args(app)
    with app.test_request_context():
        from flask import url_for

        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            values = {name: args[name] for name in rule.arguments}
            method = "GET" if "GET" in rule.methods else "POST"
            yield rule.endpoint, method, url_for(rule.endpoint, **values)


def test_every_endpoint_declares_its_roles(app):
    """An endpoint missing from access.RULES fails here (and is refused at run time)."""
    missing = sorted(r.endpoint for r in app.url_map.iter_rules() if r.endpoint not in access.RULES)
    assert missing == []
    stale = sorted(set(access.RULES) - {r.endpoint for r in app.url_map.iter_rules()})
    assert stale == []


def test_anonymous_is_sent_to_login_except_public(app, client):
    """Anonymous requests to protected endpoints redirect to the login page."""
    for endpoint, method, url in _requests(app):
        if access.RULES[endpoint].public:
            continue
        response = client.open(url, method=method, data={"csrf_token": csrf_token(client)})
        assert response.status_code == 302, (endpoint, response.status_code)
        assert "/login" in response.location, endpoint


@pytest.mark.parametrize("role", ROLES)
def test_each_role_allowed_or_forbidden(app, as_role, role):
    """Each role gets through exactly the endpoints declared for it; others answer 403."""
    client = as_role(role)
    for endpoint, method, url in _requests(app):
        rule = access.RULES[endpoint]
        if rule.public or endpoint == "auth.logout":
            continue
        response = client.open(url, method=method, data={"csrf_token": csrf_token(client)})
        if access.allowed_roles(rule, role):
            assert response.status_code != 403, (role, endpoint)
            assert "/login" not in (response.location or ""), (role, endpoint)
        else:
            assert response.status_code == 403, (role, endpoint, response.status_code)


def test_manager_opening_admin_page_is_forbidden_and_recorded(app, as_role):
    """A manager opening the users page gets 403 and the denial is in the audit trail."""
    response = as_role("manager").get("/admin/users")
    assert response.status_code == 403
    assert "You do not have access" in response.get_data(as_text=True) or "権限" in (
        response.get_data(as_text=True)
    )
    with app.app_context():
        denial = db.session.query(AuditEvent).filter_by(action="access.denied").one()
        assert denial.object_id == "admin.user_list"
        assert "manager@example.jp" in denial.actor_label


def test_json_api_answers_401_not_redirect(app, client):
    """Paths under /api/ answer 401 JSON to anonymous callers (no redirect)."""
    access.RULES["api.probe"] = access.roles(access.ADMIN)
    app.add_url_rule("/api/probe", "api.probe", lambda: {"ok": True})
    try:
        response = client.get("/api/probe")
        assert response.status_code == 401
        assert response.json == {"error": "authentication required"}
    finally:
        del access.RULES["api.probe"]


def test_undeclared_endpoint_is_refused(app, as_role):
    """A route added without an access rule is refused even for an admin."""
    app.add_url_rule("/undeclared", "undeclared", lambda: "secret")
    response = as_role("admin").get("/undeclared")
    assert response.status_code == 403
    assert b"secret" not in response.data


def test_post_without_csrf_token_is_refused(app, as_role):
    """ASVS 3.5.1: a state-changing POST without the CSRF token is refused, nothing changes."""
    client = as_role("admin")
    with app.app_context():
        before = db.session.query(Department).count()
    response = client.post("/admin/departments", data={"code": "X", "name": "X部"})
    assert response.status_code == 400
    assert "security token" in response.get_data(as_text=True) or "トークン" in (
        response.get_data(as_text=True)
    )
    with app.app_context():
        assert db.session.query(Department).count() == before


def test_no_state_change_on_get(app, as_role):
    """State-changing endpoints accept POST only (GET answers 405)."""
    client = as_role("admin")
    with app.app_context():
        target = db.session.query(User).filter_by(email="employee@example.jp").one()
    response = client.get(f"/admin/users/{target.id}/deactivate")
    assert response.status_code == 405
    with app.app_context():
        assert db.session.get(User, target.id).active
