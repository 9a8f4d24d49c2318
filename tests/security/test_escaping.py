"""User input never reaches a page as markup (ASVS 5.3.1 / 3.2.2): messages stay plain text.

Flask-Babel's lazy strings are markup to Jinja, interpolated values included; every
domain message is built with auditapp.i18n.lazy_text instead, and the error handler turns
whatever it is given into plain text.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import render_template_string

from auditapp import access, errors
from auditapp.access import Rule
from auditapp.i18n import lazy_text
from auditapp.services import inputs
from tests.conftest import post
from tests.factories import make_user

PAYLOADS = [
    '<meta http-equiv="refresh" content="0;url=//evil.example/">',
    '"><script>alert(1)</script>',
    "<img src=x onerror=alert(1)>",
]
APP_DIR = Path(__file__).resolve().parents[2] / "auditapp"


def _raw(body: str) -> list[str]:
    return [p for p in PAYLOADS if p in body]


def test_no_module_builds_messages_with_flask_babels_lazy_gettext():
    """Every lazy message in the app is plain text: nothing imports lazy_gettext directly."""
    offenders = [
        str(path.relative_to(APP_DIR))
        for path in APP_DIR.rglob("*.py")
        if re.search(
            r"import[^\n]*\blazy_gettext\b|flask_babel\.lazy_gettext", path.read_text("utf-8")
        )
    ]
    assert offenders == []


@pytest.mark.parametrize("payload", PAYLOADS)
def test_lazy_text_interpolation_is_escaped_by_templates(app, payload):
    """A translated message with input interpolated renders escaped in a template."""
    with app.test_request_context():
        message = lazy_text("%(value)s is not a date", value=payload)
        html = render_template_string("<p>{{ m }}</p>", m=message)
    assert payload not in html
    assert "&lt;" in html


@pytest.mark.parametrize(
    "cls", [errors.InvalidInput, errors.NotFound, errors.Forbidden, errors.Conflict]
)
def test_every_domain_error_page_escapes_its_message(make_app, cls):
    """Each domain error reaching the error handler is shown as text, not markup."""
    app = make_app()

    def boom():
        raise cls(lazy_text("Problem with %(v)s", v=PAYLOADS[0]), {"x": lazy_text("%(v)s", v="y")})

    app.add_url_rule("/_boom", "boom", boom)
    access.RULES["boom"] = Rule(public=True)
    try:
        response = app.test_client().get("/_boom")
    finally:
        del access.RULES["boom"]
    assert response.status_code == cls.status
    body = response.get_data(as_text=True)
    assert _raw(body) == []
    assert "&lt;meta http-equiv" in body


def test_error_page_escapes_even_a_markup_message(make_app):
    """The handler makes any message plain text, even one built with Flask-Babel directly."""
    from flask_babel import lazy_gettext

    app = make_app()

    def boom():
        raise errors.InvalidInput(lazy_gettext("Problem with %(v)s", v=PAYLOADS[0]))

    app.add_url_rule("/_boom2", "boom2", boom)
    access.RULES["boom2"] = Rule(public=True)
    try:
        body = app.test_client().get("/_boom2").get_data(as_text=True)
    finally:
        del access.RULES["boom2"]
    assert _raw(body) == []


@pytest.mark.parametrize("field", ["from", "to"])
def test_evidence_library_date_filter_is_escaped(as_role, field):
    """The reported case: a tag typed as a date filter is shown as text in the 400 page."""
    response = as_role("admin").get(f"/evidence/?{field}={PAYLOADS[0]}")
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert _raw(body) == []
    assert "&lt;meta" in body


@pytest.mark.parametrize("field", ["from", "to"])
def test_audit_trail_date_filter_is_escaped(as_role, field):
    """The same for the audit trail's date filters."""
    response = as_role("admin").get(f"/audit/events?{field}={PAYLOADS[1]}")
    assert _raw(response.get_data(as_text=True)) == []


def test_a_persons_id_in_a_form_error_is_escaped(app, as_role):
    """'already used by <employee id>' shows the other person's id as text."""
    from auditapp.extensions import db

    with app.app_context():
        make_user(db.session, email="taken@example.jp", employee_id=PAYLOADS[2])
        db.session.commit()
    client = as_role("admin")
    response = post(
        client,
        "/admin/users/new",
        {
            "employee_id": "E9",
            "name": "新人",
            "email": "taken@example.jp",
            "roles": "employee",
        },
        token_from="/admin/users/new",
    )
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert _raw(body) == []
    assert "&lt;img src=x" in body


def _query_names() -> list[str]:
    """Every query-string name the views read (request.args / args .get / getlist), and the
    date filters the views read in a loop."""
    names: set[str] = {"from", "to", "next"}
    for path in (APP_DIR / "web").rglob("*.py"):
        names.update(
            re.findall(r"args\.(?:get|getlist)\(\s*\"([A-Za-z_]+)\"", path.read_text("utf-8"))
        )
    return sorted(names)


@pytest.mark.parametrize("role", ["admin", "manager", "employee", "auditor"])
def test_no_page_echoes_a_query_value_as_markup(app, as_role, role):
    """Every GET page, given a payload in every query parameter any view reads, shows it
    escaped (or not at all) for every role."""
    names = _query_names()
    assert {"q", "page", "status"} <= set(names)
    client = as_role(role)
    tried = 0
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        if rule.endpoint in {"auth.logout"}:
            continue
        values = {arg: 1 for arg in rule.arguments}
        with app.test_request_context():
            try:
                path = app.url_for(rule.endpoint, **values)
            except Exception:  # noqa: BLE001, S112 (a converter that wants another shape)
                continue
        for payload in PAYLOADS[:2]:
            response = client.get(path, query_string={n: payload for n in names})
            tried += 1
            assert response.status_code < 500, (path, response.status_code)
            assert _raw(response.get_data(as_text=True)) == [], path
    assert tried > 20


@pytest.mark.parametrize(
    "value",
    ["研修\r\nBcc: x@evil.example", "名\t前", "a\x00b", "abc\u202etxt.exe", "x\u2066y"],
)
def test_names_and_titles_refuse_control_and_bidi_characters(value):
    """One-line fields refuse CR/LF, tabs, other control characters and bidi overrides."""
    with pytest.raises(errors.InvalidInput) as caught:
        inputs.text(value, "title_ja", max_len=200)
    assert "title_ja" in caught.value.errors


def test_multiline_fields_keep_line_breaks_but_refuse_bidi():
    """Statements keep their line breaks; bidi overrides are refused there too."""
    assert inputs.text("一行目\r\n二行目\tです", "statement", max_len=100, multiline=True)
    with pytest.raises(errors.InvalidInput):
        inputs.text("abc\u202edef", "statement", max_len=100, multiline=True)


def test_course_title_with_a_line_break_is_refused(app):
    """A course title with CR/LF is refused (it would break every reminder's subject)."""
    from auditapp.extensions import db
    from tests.factories import make_course

    with app.app_context(), pytest.raises(errors.InvalidInput) as caught:
        make_course(db.session, title_ja="研修\r\nBcc: x@evil.example")
    assert "title_ja" in caught.value.errors
