"""ASVS 5.1.5 (v4) / 3.7.2: redirects after sign-in and the language switch stay on this site."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from auditapp.web.helpers import local_path
from tests.conftest import csrf_token
from tests.factories import PASSWORD

HOSTILE = [
    "//evil.example",
    "///evil.example",
    "////evil.example/x",
    "/\t/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "\x00//evil.example",
    "/\x0b/evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/x\\y",
    "http://evil.example",
    "https:evil.example",
    "http:/evil.example",
    "HTTP://evil.example",
    "javascript:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    "//evil.example@ours",
    "/\uff0fevil.example",
    "\uff0f\uff0fevil.example",
    "/\uff3cevil.example",
    "",
]
# The same values as they arrive in a query string (decoded once by the framework).
ENCODED = ["/%09/evil.example", "/%0d%0a/evil.example", "/%2F/evil.example", "/%5Cevil.example"]


def _assert_local(location: str) -> None:
    parts = urlsplit(location)
    assert not parts.scheme and not parts.netloc, location
    assert location.startswith("/") and not location.startswith("//"), location
    assert "\\" not in location and "\t" not in location and "\n" not in location, location


@pytest.mark.parametrize("target", HOSTILE)
def test_local_path_refuses_other_hosts(target):
    """Every hostile target becomes "/"; nothing can leave the site."""
    assert local_path(target) == "/"


@pytest.mark.parametrize(
    "target", ["/", "/evidence/?q=%E8%AD%B0", "/checks/3?a=1#x", "/training/?q=議事録"]
)
def test_local_path_keeps_local_targets(target):
    """Paths on this site, Japanese included, are kept as they are."""
    assert local_path(target) == target


@pytest.mark.parametrize("target", HOSTILE + ENCODED)
def test_login_next_never_leaves_the_site(app, users, target):
    """Sign-in with a hostile ?next= answers 302 to a local path, never 500."""
    client = app.test_client()
    token = csrf_token(client)
    query = "next=" + target if target in ENCODED else {"next": target}
    response = client.post(
        "/login",
        query_string=query,
        data={"email": users["employee"], "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302, (target, response.status_code)
    _assert_local(response.location)


def test_login_next_tab_trick_goes_home(app, users):
    """The reported case: /login?next=/%09/evil.example lands on "/"."""
    client = app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login?next=/%09/evil.example",
        data={"email": users["employee"], "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302 and response.location == "/"


def test_login_next_local_path_is_followed(app, users):
    """A local ?next= (what the login redirect itself adds) is where sign-in leads."""
    client = app.test_client()
    assert "next=" in client.get("/evidence/?q=x").location
    token = csrf_token(client)
    response = client.post(
        "/login",
        query_string={"next": "/evidence/?q=x"},
        data={"email": users["employee"], "password": PASSWORD, "csrf_token": token},
    )
    assert response.location == "/evidence/?q=x"


@pytest.mark.parametrize("target", HOSTILE)
def test_language_switch_next_stays_local(client, target):
    """The language switch's next field is held to the same rule."""
    token = csrf_token(client)
    response = client.post("/language", data={"lang": "en", "next": target, "csrf_token": token})
    assert response.status_code == 302, (target, response.status_code)
    _assert_local(response.location)


def test_crlf_in_next_cannot_add_a_header(app, users):
    """CR/LF in ?next= is dropped (as browsers do): no injected header, no 500."""
    client = app.test_client()
    token = csrf_token(client)
    response = client.post(
        "/login?next=/x%0d%0aSet-Cookie:%20a=b",
        data={"email": users["employee"], "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.location == "/xSet-Cookie:%20a=b"
    assert "a=b" not in " ".join(response.headers.getlist("Set-Cookie"))
