"""`auditapp checks list`: the checks of the controls, as a table or CSV."""

from __future__ import annotations

from datetime import date

import pytest

from auditapp.extensions import db
from auditapp.services import catalog
from tests.factories import make_user, own_control


@pytest.fixture
def owned(app):
    """The catalog synced; TEC-04 (monthly) and ORG-03 (quarterly) owned since April 2026."""
    with app.app_context():
        catalog.sync(db.session, "test", app.config["CATALOG_PATH"])
        owner = make_user(db.session, roles=["manager"], email="owner@example.jp", name="担当 一郎")
        for code in ("TEC-04", "ORG-03"):
            own_control(db.session, code, owner, date(2026, 4, 1))
        db.session.commit()


def test_checks_list_cli(app, runner, owned):
    """`checks list` prints id, control, period, due date ISO, status, owner; CSV too."""
    runner.invoke(args=["tick", "--today", "2026-11-27"])
    result = runner.invoke(
        args=["checks", "list", "--fy", "FY2026", "--status", "overdue", "--today", "2026-11-27"]
    )
    assert result.exit_code == 0
    assert "TEC-04   FY2026-M01  2026-05-14  overdue  owner@example.jp" in result.output
    csv_out = runner.invoke(
        args=["checks", "list", "--format", "csv", "--owner", "owner@example.jp"]
    ).output
    assert csv_out.splitlines()[0] == "id,control,period,due,status,owner"
    bad = runner.invoke(args=["checks", "list", "--fy", "2026年度"])
    assert bad.exit_code == 2 and "--fy" in bad.output


def test_checks_list_unknown_owner_is_one_line(runner, owned):
    """--owner with an email nobody has: one `error:` line naming it, exit 1, no traceback."""
    result = runner.invoke(args=["checks", "list", "--owner", "nobody@example.jp"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "nobody@example.jp" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_checks_list_impossible_today_is_a_usage_error(runner, owned):
    """--today 2026-02-30 exits 2 with the reason."""
    result = runner.invoke(args=["checks", "list", "--today", "2026-02-30"])
    assert result.exit_code == 2 and "not a real date" in result.stderr
