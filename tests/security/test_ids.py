"""Ids beyond what the database holds answer 404 on every route, never 500."""

from __future__ import annotations

import pytest

from auditapp import access
from auditapp.web.helpers import id_arg
from auditapp.web.request import MAX_ID
from tests.conftest import csrf_token

TOO_BIG = [str(MAX_ID + 1), str(2**63 - 1), str(2**63), str(2**64), "9" * 30, "9" * 5000]


def _int_routes(app) -> list[tuple[str, str, str]]:
    """(endpoint, method, URL template with {}) for every route with an <int:...> argument."""
    routes = []
    for rule in app.url_map.iter_rules():
        ints = [name for name, conv in rule._converters.items() if conv.regex == r"\d+"]
        if not ints:
            continue
        url = rule.rule
        for name in rule.arguments:
            url = url.replace(f"<int:{name}>", "{}").replace(f"<{name}>", "x")
        method = "GET" if "GET" in rule.methods else "POST"
        routes.append((rule.endpoint, method, url))
    return routes


def test_there_are_int_routes_to_check(app):
    """The walk below covers the id routes (users, departments, checks, findings, evidence)."""
    endpoints = {endpoint for endpoint, _m, _u in _int_routes(app)}
    assert {"admin.user_edit", "checks.check_detail", "evidence.evidence_detail"} <= endpoints
    assert len(endpoints) >= 14


@pytest.mark.parametrize("number", TOO_BIG)
def test_ids_past_the_integer_range_answer_404(app, as_role, number):
    """Every <int:...> route answers 404 (not 500), asked by a role that may use it, for an
    id no column can hold."""
    clients = {role: as_role(role) for role in ("admin", "manager")}
    tokens = {role: csrf_token(client) for role, client in clients.items()}
    for endpoint, method, url in _int_routes(app):
        role = next(r for r in clients if access.allowed_roles(access.RULES[endpoint], r))
        response = clients[role].open(
            url.format(number), method=method, data={"csrf_token": tokens[role]}
        )
        assert response.status_code == 404, (endpoint, number, response.status_code)


def test_largest_id_is_still_a_normal_not_found(app, as_role):
    """The largest id a column holds reaches the view, which answers its own 404."""
    client = as_role("admin")
    for url in (f"/admin/users/{MAX_ID}", f"/checks/{MAX_ID}", f"/evidence/{MAX_ID}"):
        assert client.get(url).status_code == 404, url


@pytest.mark.parametrize(
    "url",
    ["/admin/users?department={}", "/evidence/?uploader={}", "/training/department?department={}"],
)
def test_query_string_ids_past_the_range_are_ignored(app, as_role, url):
    """An id filter past the range is treated like any non-id (no filter), never a 500."""
    client = as_role("admin")
    for number in TOO_BIG:
        response = client.get(url.format(number))
        assert response.status_code in (200, 404), (url, number, response.status_code)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("7", 7), (str(MAX_ID), MAX_ID), (str(MAX_ID + 1), None), ("", None), (None, None)]
    + [("-1", None), ("1.5", None), ("１２", None), ("9" * 5000, None)],
)
def test_id_arg(value, expected):
    """id_arg keeps ids a column can hold and nothing else."""
    assert id_arg(value) == expected
