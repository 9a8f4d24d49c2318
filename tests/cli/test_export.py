"""`auditapp export` (workbook, bundle) and `auditapp export verify`."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from auditapp.extensions import db
from auditapp.models import AuditEvent, Evidence, ExportJob
from auditapp.services import export
from auditapp.services.export import jobs
from auditapp.storage import sha256_file
from tests.factories import make_user
from tests.services.test_export import build_world, request_for


def run(runner, *args):
    """Invoke `auditapp export ...`."""
    return runner.invoke(args=["export", *args])


@pytest.fixture
def world(app):
    with app.app_context():
        return build_world(app, db.session)


def test_fiscal_year_export(app, runner, world, tmp_path):
    """--scope FY2025 writes the workbook, prints rows and the chain head, and records it."""
    out = tmp_path / "report.xlsx"
    result = run(runner, "--scope", "FY2025", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "scope: FY2025 (2025-04-01 – 2026-03-31)" in result.output
    assert "Checks 13" in result.output and "audit chain:" in result.output
    wb = load_workbook(out)
    assert wb.sheetnames[:4] == ["Summary", "Applicability", "Controls", "Checks"]
    assert wb["Checks"]["A1"].value == "点検ID"  # Japanese by default
    with app.app_context():
        event = db.session.query(AuditEvent).filter_by(action="export.create").one()
        assert event.actor_label.startswith("cli:") and '"bundle":false' in event.after_json
        assert sha256_file(out)[0] in event.after_json
        job = db.session.query(ExportJob).one()  # the CLI's own job, run in this process
        assert (job.state, job.pinned, event.object_id) == ("done", True, job.public_id)
        assert job.runner.startswith("cli:") and job.workbook_sha256 == sha256_file(out)[0]


def test_range_categories_and_english(runner, world, tmp_path):
    """--from/--to with --category and --lang en."""
    out = tmp_path / "r.xlsx"
    result = run(
        runner,
        "--from",
        "2025-04-01",
        "--to",
        "2025/06/30",
        "--category",
        "technical",
        "--lang",
        "en",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    wb = load_workbook(out)
    assert wb["Checks"]["A1"].value == "Check ID"
    assert wb["Checks"].max_row == 4  # TEC-04 M01..M03


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--from", "2026-05-01", "--to", "2026-04-01"],
            "--from: 2026-05-01 is after the end date 2026-04-01",
        ),
        (["--scope", "FY2025", "--category", "payroll"], "--category: unknown category 'payroll'"),
        (["--scope", "FY2025", "--lang", "fr"], "--lang: choose ja or en"),
        (["--scope", "FY2025", "--from", "2025-04-01"], "--scope: give a fiscal year or a date"),
        (["--to", "2025-04-01"], "--from: is required"),
        (["--scope", "FY2025"], "--out is required"),
        (["--scope", "FY2025", "--out", "r.csv"], "must be an .xlsx file"),
        (["--scope", "FY2025", "--out", "r.xlsx", "--bundle", "b.tar"], "must be a .zip file"),
        (["--scope", "FY2025", "--out", "/no/such/dir/r.xlsx"], "does not exist"),
    ],
)
def test_bad_input_exits_2(runner, world, tmp_path, monkeypatch, args, message):
    """Bad options exit 2 with a message naming the option; nothing is written."""
    monkeypatch.chdir(tmp_path)
    result = run(runner, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert list(tmp_path.glob("*.xlsx")) == []


def test_unknown_category_lists_the_known_ones(runner, world, tmp_path):
    """The message for an unknown category lists the valid ids."""
    result = run(runner, "--scope", "FY2025", "--category", "x", "--out", str(tmp_path / "r.xlsx"))
    assert result.exit_code == 2 and "known: basic_policy, handling_rules" in result.output


def test_empty_scope(runner, world, tmp_path):
    """A scope with nothing in it writes a valid workbook that says so."""
    out = tmp_path / "r.xlsx"
    result = run(runner, "--scope", "FY2010", "--lang", "en", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "nothing is in scope" in result.output
    text = [str(r[0]) for r in load_workbook(out)["Summary"].iter_rows(values_only=True)]
    assert any(t.startswith("Nothing is in scope") for t in text)


def test_missing_evidence_file_completes_and_exits_1(app, runner, world, tmp_path):
    """A file gone from the store: the workbook is written with the row marked, the
    command lists it and exits 1."""
    with app.app_context():
        item = db.session.get(Evidence, world.evidence_check)
        sha = item.sha256
    blob = Path(app.config["EVIDENCE_PATH"]) / sha[:2] / sha[2:4] / sha
    blob.unlink()
    out = tmp_path / "r.xlsx"
    result = run(runner, "--scope", "FY2025", "--out", str(out))
    assert result.exit_code == 1
    assert f"missing: evidence {world.evidence_check} (factory.pdf) sha256 {sha}" in result.output
    assert "1 evidence file(s) missing or altered" in result.output
    rows = {r[0]: r for r in load_workbook(out)["Evidence"].iter_rows(min_row=2, values_only=True)}
    assert rows[world.evidence_check][10] == "欠落"


def test_refused_while_another_export_runs(app, runner, world, tmp_path):
    """An export while a queued one runs exits 1 naming who started it; nothing is
    written and no job of its own is left behind."""
    with app.app_context():
        person = make_user(db.session, roles=["auditor"], name="監査 一郎")
        job = export.enqueue(db.session, owner=person, request=request_for(), bundle=False)
        db.session.commit()
        running_id = job.id
        jobs.claim(db.session, running_id, "scheduler:host:1", workbook=None, bundle=None)
    result = run(runner, "--scope", "FY2025", "--out", str(tmp_path / "r.xlsx"))
    assert result.exit_code == 1
    assert "error: Another export is running (started by 監査 一郎" in result.output
    assert not (tmp_path / "r.xlsx").exists()
    with app.app_context():
        assert [j.id for j in db.session.query(ExportJob)] == [running_id]


def test_a_dead_runners_job_does_not_block_the_cli(app, runner, world, tmp_path):
    """A job left running by a runner that died (its heartbeat long stopped) is marked
    failed before the CLI claims, and the CLI export runs."""
    with app.app_context():
        person = make_user(db.session, roles=["auditor"])
        job = export.enqueue(db.session, owner=person, request=request_for(), bundle=False)
        db.session.commit()
        dead_id = job.id
        jobs.claim(db.session, dead_id, "scheduler:gone:1", workbook=None, bundle=None)
        db.session.query(ExportJob).filter_by(id=dead_id).update(
            {"heartbeat_at": datetime.now(UTC) - timedelta(hours=1)}
        )
        db.session.commit()
    result = run(runner, "--scope", "FY2025", "--out", str(tmp_path / "r.xlsx"))
    assert result.exit_code == 0, result.output
    with app.app_context():
        dead = db.session.get(ExportJob, dead_id)
        assert (dead.state, dead.failure) == ("failed", "stalled")


def test_run_queued_runs_what_waits(app, runner, world):
    """`export run-queued` runs the queued exports, prints each, and exits; with nothing
    queued it says so."""
    with app.app_context():
        person = make_user(db.session, roles=["auditor"])
        public_id = export.enqueue(
            db.session, owner=person, request=request_for(), bundle=True
        ).public_id
        db.session.commit()
    result = run(runner, "run-queued")
    assert result.exit_code == 0, result.output
    assert f"export {public_id}: done" in result.output
    with app.app_context():
        job = db.session.query(ExportJob).one()
        assert job.state == "done" and job.runner.startswith("cli:")
        assert export.job_file(export.exports_dir(app.instance_path), job).is_file()
    again = run(runner, "run-queued")
    assert again.exit_code == 0 and "no export was waiting" in again.output


def test_bundle_and_verify(app, runner, world, tmp_path):
    """--bundle writes the ZIP (and the workbook); verify accepts it, then names an altered
    file and exits 1."""
    out, bundle = tmp_path / "r.xlsx", tmp_path / "b.zip"
    result = run(runner, "--scope", "FY2025", "--out", str(out), "--bundle", str(bundle))
    assert result.exit_code == 0, result.output
    assert "bundle:" in result.output and "2 evidence files" in result.output
    with zipfile.ZipFile(bundle) as zf:
        assert zf.read("report.xlsx") == out.read_bytes()
    result = run(runner, "verify", str(bundle))
    assert result.exit_code == 0 and "bundle intact" in result.output
    with app.app_context():
        assert db.session.query(AuditEvent).filter_by(action="export.create").count() == 1

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bundle) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.startswith("evidence/TEC-04/general/"):
                data += b"!"
            dst.writestr(info.filename, data)
    result = run(runner, "verify", str(bad))
    assert result.exit_code == 1
    assert "evidence/TEC-04/general/factory.pdf: SHA-256" in result.output
    assert "1 problem(s)" in result.output


def test_verify_needs_an_existing_file(runner, tmp_path):
    """verify of a path that does not exist is a usage error."""
    result = run(runner, "verify", str(tmp_path / "nope.zip"))
    assert result.exit_code == 2


def test_no_options_prints_help(runner):
    """`auditapp export` alone explains itself."""
    result = run(runner)
    assert result.exit_code == 0 and "--scope" in result.output and "verify" in result.output


def test_export_options_do_not_apply_to_verify(runner, tmp_path):
    """Options of the export itself given with `verify` are refused, not ignored."""
    path = tmp_path / "b.zip"
    path.write_bytes(b"x")
    result = run(runner, "--scope", "FY2025", "verify", str(path))
    assert result.exit_code == 2 and "do not apply" in result.output
