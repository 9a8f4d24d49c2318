"""The training sheets and the overall completion rate in the auditor workbook."""

from __future__ import annotations

from datetime import UTC, date, datetime

from openpyxl import load_workbook

from auditapp.services import export, training
from auditapp.services.export.sheets import training as training_sheet
from auditapp.services.training import status as training_status
from tests.factories import make_course, make_department, make_user
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
        now=datetime(2025, 12, 1, tzinfo=UTC),
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


def test_training_rows_in_batches_match_the_status_table(app, session, tmp_path, monkeypatch):
    """With people read in tiny batches, every person × course row still carries its own
    name, department, status and score; inactive people are left out; the organization's
    status query runs a fixed number of times whatever the number of batches."""
    monkeypatch.setattr(training_sheet, "PEOPLE_BATCH", 2)
    calls = []
    real = training.status_select

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(training, "status_select", counting)
    # The roll-up asks the status module itself for the same query.
    monkeypatch.setattr(training_status, "status_select", counting)
    dept = make_department(session, code="IT", name="情報システム部")
    people = [
        make_user(session, roles=["employee"], department=dept, hired_on="2020-04-01")
        for _ in range(5)
    ]
    people[2].active = False
    first = make_course(session, code="PI", today=date(2025, 4, 1))
    second = make_course(session, code="SEC", today=date(2025, 4, 1))
    for person in people[:2]:
        plan = training.plan_completion(
            session,
            "test",
            second,
            person,
            completed_on="2025-11-01",
            score=None,
            agreed=False,
            has_certificate=True,
            today=date(2025, 12, 1),
        )
        training.record_completion(session, "test", plan, source="import")
    session.commit()
    out = tmp_path / "report.xlsx"
    result = export.write_workbook(
        session,
        request_for(lang="en"),
        out,
        generated_by="test",
        now=datetime(2025, 12, 1, tzinfo=UTC),
    )
    rows = list(load_workbook(out)["Training"].iter_rows(min_row=2, values_only=True))
    active = [p for p in people if p.active]
    assert result.rows["Training"] == len(rows) == 2 * len(active)
    expected = {
        (p.employee_id, p.name, course.code): "complete"
        if p in people[:2] and course is second
        else "overdue"
        for p in active
        for course in (first, second)
    }
    assert {(r[0], r[1], r[3]): r[5] for r in rows} == expected
    assert {r[2] for r in rows} == {dept.label("en")}
    assert len(calls) == 2  # the status table once, the roll-up once
