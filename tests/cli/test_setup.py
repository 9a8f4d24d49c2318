"""`auditapp init` and `auditapp demo`, as an operator uses them."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from auditapp import create_app
from auditapp.cli import cli
from auditapp.extensions import db
from auditapp.models import Department, Role, User
from tests.cli.helpers import actions, counts, invoke, last_event, person, sign_in

# init --------------------------------------------------------------------------


@pytest.fixture
def empty_app(tmp_path):
    """An app on a database with no tables at all, as on a new installation."""
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "i"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'init.db'}",
        }
    )
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_init_creates_schema_and_first_admin(empty_app):
    """First `init` migrates an empty database and prints the admin login and password once."""
    result = invoke(empty_app.test_cli_runner(), "init")

    assert result.exit_code == 0, result.output
    assert re.search(r"^schema: upgraded None -> \w+$", result.output, re.M)
    assert "admin login: admin@example.com" in result.output
    passwords = re.findall(r"^  password:\s+(\S+)$", result.output, re.M)
    assert len(passwords) == 1
    assert "nothing changed" not in result.output
    admin = person(empty_app, "admin@example.com")
    assert admin["roles"] == {"admin"}
    assert admin["active"] and admin["must_change_password"]
    assert actions(empty_app).count("user.create") == 1
    assert last_event(empty_app, "user.create")["client_addr"] == "cli"


def test_init_admin_can_sign_in_with_printed_password(empty_app):
    """The printed one-time password authenticates the first administrator."""
    result = invoke(empty_app.test_cli_runner(), "init")
    password = re.search(r"^  password:\s+(\S+)$", result.output, re.M).group(1)

    assert sign_in(empty_app, "admin@example.com", password) == "admin@example.com"


def test_init_with_custom_admin(empty_app):
    """--admin-email and --admin-name choose the first administrator."""
    result = invoke(
        empty_app.test_cli_runner(),
        "init",
        "--admin-email",
        "Boss@Example.JP",
        "--admin-name",
        "社長",
    )

    assert result.exit_code == 0, result.output
    assert "admin login: boss@example.jp" in result.output
    assert person(empty_app, "boss@example.jp")["name"] == "社長"


def test_init_second_run_changes_nothing(empty_app):
    """A second `init` says 'nothing changed', shows no password, creates no admin or event."""
    runner = empty_app.test_cli_runner()
    first = invoke(runner, "init")
    assert first.exit_code == 0, first.output
    before = counts(empty_app)

    second = invoke(runner, "init")

    assert second.exit_code == 0, second.output
    assert "nothing changed" in second.output
    assert re.search(r"^schema: current at \w+$", second.output, re.M)
    assert "password:" not in second.output
    assert "admin login: admin@example.com" in second.output
    assert counts(empty_app) == before
    assert before[0] == 1


def test_init_refuses_an_invalid_catalog(tmp_path):
    """`auditapp init` stops with the catalog's problems when the files are invalid."""
    folder = tmp_path / "controls"
    folder.mkdir()
    (folder / "01-basic-policy.yaml").write_bytes("controls:\n  - id: 基本\n".encode("cp932"))
    app = create_app(
        {
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "i"),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'init.db'}",
            "CATALOG_PATH": str(folder),
        }
    )
    result = app.test_cli_runner().invoke(cli, ["init"])
    assert result.exit_code == 1
    assert "01-basic-policy.yaml:2" in result.output and "not valid UTF-8" in result.output
    assert "the catalog is invalid" in result.output


# demo --------------------------------------------------------------------------


def test_demo_creates_departments_and_people_in_every_role(app, runner):
    """`demo` creates 30 people across 6 departments with every role present."""
    result = invoke(runner, "demo")

    assert result.exit_code == 0, result.output
    assert "demo: 6 departments, 30 people created" in result.output
    password = re.search(r"the password: (\S+)$", result.output, re.M).group(1)
    with app.app_context():
        people = db.session.scalars(select(User)).all()
        assert len(people) == 30
        assert db.session.scalar(select(func.count()).select_from(Department)) == 6
        assert {p.department.code for p in people} == {"GA", "HR", "SALES", "DEV", "IS", "CS"}
        assert set().union(*(p.roles for p in people)) == set(Role)
        some_admin = next(p.email for p in people if Role.ADMIN in p.roles)
    assert "demo.create" in actions(app)
    assert sign_in(app, some_admin, password) == some_admin


def test_demo_if_empty_second_time_changes_nothing(app, runner):
    """`demo --if-empty` on an organization with data does nothing and exits 0."""
    assert invoke(runner, "demo", "--if-empty").exit_code == 0
    before = counts(app)

    result = invoke(runner, "demo", "--if-empty")

    assert result.exit_code == 0, result.output
    assert "nothing changed" in result.output
    assert counts(app) == before


def test_demo_on_non_empty_organization_fails(app, runner):
    """`demo` without --if-empty refuses an organization that already has departments."""
    assert invoke(runner, "demo", "--people", "6").exit_code == 0
    before = counts(app)

    result = invoke(runner, "demo")

    assert result.exit_code == 1
    assert "error: the organization already has departments" in result.stderr
    assert counts(app) == before


def test_demo_scales_with_synthetic_controls(app, runner):
    """`demo --controls N --years Y` adds N monthly controls with Y fiscal years of checks."""
    runner.invoke(args=["catalog", "sync"])
    first = runner.invoke(args=["demo", "--years", "1"])
    assert first.exit_code == 0, first.output
    result = runner.invoke(args=["demo", "--controls", "5", "--years", "2"])
    assert result.exit_code == 0, result.output
    assert "demo: 5 synthetic controls" in result.output
    from auditapp.models import Check, Control

    with app.app_context():
        scale = db.session.query(Control).filter(Control.code.like("SCALE-%")).count()
        checks = db.session.query(Check).join(Control).filter(Control.code.like("SCALE-%")).count()
    assert scale == 5 and checks >= 5 * 13
