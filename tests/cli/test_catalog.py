"""`auditapp catalog ...` commands."""

from __future__ import annotations

from auditapp.extensions import db
from auditapp.models import Control
from auditapp.services import catalog
from tests.factories import make_user


def test_validate_shipped_catalog(runner):
    """The shipped catalog validates; the command says how many controls and the version."""
    result = runner.invoke(args=["catalog", "validate"])
    assert result.exit_code == 0, result.output
    assert (
        "catalog valid: 36 controls in 8 files" in result.output
        or "catalog valid:" in result.output
    )


def test_validate_reports_file_line_id_and_field(runner, tmp_path):
    """A bad file gives exit 1 and a message naming the file, line, control and field."""
    bad = tmp_path / "local-x.yaml"
    bad.write_text(
        "controls:\n  - id: LOC-01\n    category: technical\n    frequency: weekly\n", "utf-8"
    )
    result = runner.invoke(args=["catalog", "validate", str(bad)])
    assert result.exit_code == 1
    assert "local-x.yaml:4: LOC-01: frequency:" in result.output


def test_sync_twice_reports_zero_changes(app, runner):
    """The first sync adds every control, the second reports 0 changes."""
    first = runner.invoke(args=["catalog", "sync"])
    assert first.exit_code == 0 and "36 added" in first.output
    second = runner.invoke(args=["catalog", "sync"])
    assert "(0 changes;" in second.output


def test_sync_of_invalid_catalog_writes_nothing(app, runner, tmp_path):
    """An invalid catalog folder is refused with the problems listed and nothing written."""
    folder = tmp_path / "controls"
    folder.mkdir()
    (folder / "local-a.yaml").write_text("controls: [", "utf-8")
    result = runner.invoke(args=["catalog", "sync", str(folder)])
    assert result.exit_code == 1 and "local-a.yaml" in result.output
    with app.app_context():
        assert db.session.query(Control).count() == 0


def test_assign_list_and_profile(app, runner):
    """Owners are assigned by email; list shows them; the profile can be shown and set."""
    runner.invoke(args=["catalog", "sync"])
    with app.app_context():
        make_user(db.session, roles=["manager"], email="boss@example.jp")
        db.session.commit()
    result = runner.invoke(args=["catalog", "assign", "org-01", "boss@example.jp"])
    assert result.exit_code == 0 and "ORG-01: owner boss@example.jp" in result.output
    result = runner.invoke(args=["catalog", "assign", "ORG-01", "nobody@example.jp"])
    assert result.exit_code == 1 and "no active person" in result.output
    result = runner.invoke(args=["catalog", "list", "--format", "csv"])
    assert "ORG-01,organizational,annual,boss@example.jp,yes,1," in result.output
    result = runner.invoke(args=["catalog", "list", "--unowned"])
    assert "ORG-01" not in result.output and "ORG-02" in result.output
    assert "profile: standard" in runner.invoke(args=["catalog", "profile"]).output
    assert "profile: sme" in runner.invoke(args=["catalog", "profile", "sme"]).output
    with app.app_context():
        assert catalog.profile(db.session).value == "sme"
