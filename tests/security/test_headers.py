"""ASVS 3.4 / 14: security headers, inert user text, generic error pages."""

from __future__ import annotations

from auditapp.extensions import db
from tests.conftest import post
from tests.factories import make_user


def test_security_headers_on_every_page(client):
    """CSP without inline scripts, frame-ancestors none, nosniff and a referrer policy."""
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_nothing_loaded_from_other_hosts(as_role):
    """Pages reference no other host (no CDN): every src/href is local."""
    html = as_role("admin").get("/admin/users").get_data(as_text=True)
    assert "http://" not in html and "https://" not in html


def test_user_text_renders_inert(app, as_role):
    """ASVS 5.3: script and attribute payloads in a name are escaped, not executed."""
    with app.app_context():
        make_user(db.session, name='<script>alert(1)</script>" onmouseover="x')
        db.session.commit()
    html = as_role("admin").get("/admin/users?status=all").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&#34; onmouseover=&#34;x" in html


def test_not_found_page_is_generic(as_role):
    """Unknown ids give a 404 page without internals, in the user's language."""
    response = as_role("admin").get("/admin/users/999999")
    assert response.status_code == 404
    body = response.get_data(as_text=True)
    assert "Traceback" not in body and "sqlalchemy" not in body.lower()


def test_server_error_page_hides_details(app, as_role):
    """An unexpected error gives a generic 500 page, never a stack trace."""
    from auditapp import access

    def boom():
        raise RuntimeError("secret internals")

    access.RULES["boom"] = access.SIGNED_IN
    app.add_url_rule("/boom", "boom", boom)
    try:
        response = as_role("employee").get("/boom")
    finally:
        del access.RULES["boom"]
    assert response.status_code == 500
    assert "secret internals" not in response.get_data(as_text=True)


def test_error_pages_in_japanese(client):
    """Error pages follow the language: Japanese for a Japanese browser."""
    response = client.get("/no-such-page", headers={"Accept-Language": "ja"})
    assert response.status_code == 404
    assert "見つかりません" in response.get_data(as_text=True)
    response = client.get("/no-such-page", headers={"Accept-Language": "en"})
    assert "Not found" in response.get_data(as_text=True)


def test_too_large_body_states_the_limit(make_app, users):
    """ASVS 12.1: a body over the limit answers 413 and says what the limit is."""
    app = make_app(MAX_CONTENT_LENGTH=1024 * 1024)
    client = app.test_client()
    from tests.conftest import login

    login(client, users["admin"])
    response = post(client, "/admin/departments", {"name": "x" * (2 * 1024 * 1024)})
    assert response.status_code == 413
    assert "1 MiB" in response.get_data(as_text=True)
