"""The training sheets and the overall completion rate in the auditor workbook."""

from __future__ import annotations

from datetime import date

from openpyxl import load_workbook

from auditapp.services import export, training
from tests.factories import make_department, make_user
from tests.services.test_export import request_for


def test_training_sheets_and_summary(app, session, tmp_path):
    """Person × course rows with status, dates and score; % per department; the summary."""
    dept = make_department(session, code="GA", name="総務部")
    done = make_user(
        session, roles=["employee"], department=dept, name="受講 済子", hired_on="2020-04-01"
    )
    make_user(
        session, roles=["employee"], department=dept, name="未受講 太郎", hired_on="2020-04-01"
    )
    course = training.create_course(
        session,
        "test",
        {
            "code": "PI",
            "title_ja": "個人情報保護研修",
            "title_en": "Privacy training",
            "recurrence_months": 12,
            "score_required": True,
            "pass_mark": 70,
            "audience": "all",
        },
        date(2025, 4, 1),
    )
    plan = training.plan_completion(
        session,
        "test",
        course,
        done,
        completed_on="2025-10-01",
        score=88,
        agreed=False,
        has_certificate=True,
        today=date(2025, 12, 1),
    )
    training.record_completion(session, "test", plan, source="import")
    session.commit()
    out = tmp_path / "report.xlsx"
    export.write_workbook(
        session,
        request_for(lang="en"),
        out,
        generated_by="test",
        now=export.datetime(2025, 12, 1, tzinfo=export.UTC),
    )
    wb = load_workbook(out)
    assert wb.sheetnames.index("Training") == wb.sheetnames.index("Evidence") + 1
    rows = [r for r in wb["Training"].iter_rows(min_row=2, values_only=True)]
    by_name = {r[1]: r for r in rows}
    assert by_name["受講 済子"][5] == "complete" and by_name["受講 済子"][8] == 88
    assert by_name["受講 済子"][7].date() == date(2026, 10, 1)
    assert by_name["未受講 太郎"][5] == "overdue"
    dept_rows = [
        r
        for r in wb["Training by department"].iter_rows(min_row=2, values_only=True)
        if r[1] == "PI"
    ]
    assert any(r[-1] == 50 for r in dept_rows)
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(values_only=True) if r and r[0]}
    assert summary["Training completion (overall)"] == 50.0
