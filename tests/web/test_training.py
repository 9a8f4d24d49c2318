"""Training over the web: my training, recording completions (certificates, pledges), the
department matrix and group sessions, the organization roll-up and CSV, course admin,
exemptions and the completion import. Access per role is in tests/security."""

from __future__ import annotations

import csv
import html
import io
from datetime import date

import pytest
from sqlalchemy import func, select

from auditapp.extensions import db
from auditapp.models import (
    AuditEvent,
    Completion,
    Course,
    Department,
    Evidence,
    EvidenceLink,
    Exemption,
    User,
)
from auditapp.services import training
from tests.conftest import csrf_token, login
from tests.factories import make_course, make_department, make_user

EN = {"Accept-Language": "en"}
TODAY = date(2026, 6, 1)
EFFECTIVE = date(2026, 4, 1)
HIRED = "2024-04-01"
PDF = b"%PDF-1.4\n" + b"certificate " * 50 + b"\n%%EOF\n"


@pytest.fixture
def world(app, users, monkeypatch):
    """Today is 2026-06-01. SALES: a manager, an employee and a colleague; DEV: a developer.
    Courses from 2026-04-01 (due 2026-05-01): SEC-1 for everyone, CERT-1 needing a
    certificate, PLEDGE (an acknowledgement, once), DEV-1 for DEV only."""
    monkeypatch.setattr("auditapp.web.training.today", lambda: TODAY)
    with app.app_context():
        s = db.session
        sales = make_department(s, code="SALES", name="営業部")
        dev = make_department(s, code="DEV", name="開発部")
        people = {
            "mgr": make_user(
                s,
                roles=["manager"],
                email="mgr@example.jp",
                name="営業 課長",
                employee_id="S001",
                department=sales,
                hired_on=HIRED,
            ),
            "emp": make_user(
                s,
                email="emp@example.jp",
                name="営業 一郎",
                employee_id="S002",
                department=sales,
                hired_on=HIRED,
            ),
            "colleague": make_user(
                s,
                email="colleague@example.jp",
                name="営業 二郎",
                employee_id="S003",
                department=sales,
                hired_on=HIRED,
            ),
            "developer": make_user(
                s,
                email="dev@example.jp",
                name="開発 三郎",
                employee_id="D001",
                department=dev,
                hired_on=HIRED,
            ),
        }
        make_course(s, code="SEC-1", title_ja="情報セキュリティ基礎", title_en="Security basics")
        make_course(s, code="CERT-1", title_en="Certified course", certificate_required=True)
        make_course(
            s,
            code="PLEDGE",
            title_en="Confidentiality pledge",
            kind="acknowledgement",
            ack_text="業務上知り得た個人情報を漏らしません。",
            recurrence_months=0,
        )
        make_course(s, code="DEV-1", title_en="Secure coding", audience="some", departments=[dev])
        s.commit()
        return {
            "sales": sales.id,
            "dev": dev.id,
            **{k: u.id for k, u in people.items()},
        }


def _client(app, email: str):
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def _post(client, path: str, data: dict | None = None, **kw):
    """POST with a CSRF token, in English."""
    return client.post(
        path, data={**(data or {}), "csrf_token": csrf_token(client, "/")}, headers=EN, **kw
    )


def _page(client, path: str = "/training/") -> str:
    response = client.get(path, headers=EN)
    assert response.status_code == 200, response.status_code
    return html.unescape(response.get_data(as_text=True))


def _completions(app) -> list[tuple[str, str, date, str]]:
    """(course, person's email, completed_on, source) of every completion."""
    with app.app_context():
        return sorted(
            (c.course.code, c.user.email, c.completed_on, c.source)
            for c in db.session.scalars(select(Completion))
        )


def _record(app, code: str, user_id: int, day: date) -> None:
    """A completion recorded directly through the service."""
    with app.app_context():
        person = db.session.get(User, user_id)
        course = training.get_course(db.session, code)
        plan = training.plan_completion(
            db.session,
            "test",
            course,
            person,
            completed_on=day,
            score=None,
            agreed=True,
            has_certificate=True,
            today=TODAY,
        )
        training.record_completion(db.session, "test", plan, source="import")
        db.session.commit()


# My training -------------------------------------------------------------------------------


def test_my_training_shows_own_rows_only(app, world):
    """An employee sees the courses they must take with their status, and only their own
    history: not another department's course, not a colleague's completions."""
    _record(app, "SEC-1", world["colleague"], date(2026, 5, 10))
    _record(app, "PLEDGE", world["emp"], date(2026, 4, 2))
    page = _page(_client(app, "emp@example.jp"))
    assert "Security basics" in page and "Certified course" in page
    assert "Confidentiality pledge" in page
    assert "Secure coding" not in page
    assert "Overdue" in page and "Complete" in page
    assert "2026-04-02" in page and "2026-05-10" not in page


def test_employee_records_own_completion(app, world):
    """Recording a completion writes it for the signed-in person and the status turns complete."""
    client = _client(app, "emp@example.jp")
    response = _post(client, "/training/SEC-1/complete", {"completed_on": "2026-05-20"})
    assert response.status_code == 302 and response.headers["Location"].endswith("/training/")
    page = _page(client)
    assert "Recorded: Security basics." in page
    assert _completions(app) == [("SEC-1", "emp@example.jp", date(2026, 5, 20), "self")]
    with app.app_context():
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "training.complete")
        )
        assert event.actor_label == "営業 一郎 <emp@example.jp>"


@pytest.mark.parametrize(
    ("completed_on", "message"),
    [
        ("2026-06-02", "SEC-1: must not be in the future"),
        ("2024-03-31", "SEC-1: is before the person was hired (2024-04-01)"),
        ("", "SEC-1: is required"),
        ("someday", "SEC-1: 'someday' is not a date (use YYYY-MM-DD, YYYY/MM/DD or YYYY年M月D日)"),
    ],
)
def test_bad_completion_date_is_refused(app, world, completed_on, message):
    """A completion dated in the future, before hiring, or not a date is refused with the
    reason and nothing is written."""
    client = _client(app, "emp@example.jp")
    _post(client, "/training/SEC-1/complete", {"completed_on": completed_on})
    assert message in _page(client)
    assert _completions(app) == []


def test_certificate_required_course_without_certificate_is_refused(app, world):
    """A course needing a certificate refuses a completion without the file."""
    client = _client(app, "emp@example.jp")
    _post(client, "/training/CERT-1/complete", {"completed_on": "2026-05-20"})
    assert "CERT-1: this course needs a certificate file" in _page(client)
    assert _completions(app) == []


def test_certificate_is_stored_as_evidence_of_the_completion(app, world):
    """The uploaded certificate is stored as evidence linked to the completion."""
    client = _client(app, "emp@example.jp")
    response = _post(
        client,
        "/training/CERT-1/complete",
        {"completed_on": "2026-05-20", "certificate": (io.BytesIO(PDF), "修了証.pdf")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    assert "Recorded: Certified course." in _page(client)
    assert _completions(app) == [("CERT-1", "emp@example.jp", date(2026, 5, 20), "self")]
    with app.app_context():
        completion = db.session.scalar(select(Completion))
        link = db.session.scalar(select(EvidenceLink))
        item = db.session.get(Evidence, link.evidence_id)
        assert (link.object_type, link.object_id) == ("completion", str(completion.id))
        assert item.filename == "修了証.pdf" and item.media_type == "application/pdf"
        assert item.uploaded_by_id == world["emp"] and item.description == "CERT-1"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"MZ\x90\x00", "CERT-1: the content is not a file type we accept (allowed: "),
        (b"", "CERT-1: the file is empty"),
    ],
)
def test_bad_certificate_file_is_refused(app, world, data, message):
    """A certificate that is empty or not an accepted file type is refused; nothing is
    written."""
    client = _client(app, "emp@example.jp")
    _post(
        client,
        "/training/CERT-1/complete",
        {"completed_on": "2026-05-20", "certificate": (io.BytesIO(data), "cert.pdf")},
        content_type="multipart/form-data",
    )
    assert message in _page(client)
    assert _completions(app) == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Evidence)) == 0


def test_acknowledgement_needs_the_box_ticked(app, world):
    """A pledge without agreed=1 is refused; with it, it is recorded today with agreed_at."""
    client = _client(app, "emp@example.jp")
    _post(client, "/training/PLEDGE/complete", {})
    assert "PLEDGE: tick the box to agree" in _page(client)
    assert _completions(app) == []
    _post(client, "/training/PLEDGE/complete", {"agreed": "1"})
    assert "Recorded: Confidentiality pledge." in _page(client)
    assert _completions(app) == [("PLEDGE", "emp@example.jp", TODAY, "self")]
    with app.app_context():
        assert db.session.scalar(select(Completion)).agreed_at is not None


def test_score_below_pass_mark_is_recorded_as_not_passed(app, world):
    """A score below the pass mark is kept in the history as not passed; the course stays due
    until a passing score is recorded."""
    with app.app_context():
        make_course(db.session, code="QUIZ-1", score_required=True, pass_mark="70")
        db.session.commit()
    client = _client(app, "emp@example.jp")
    _post(client, "/training/QUIZ-1/complete", {"completed_on": "2026-05-20", "score": "69"})
    page = _page(client)
    assert "Not passed" in page and "pass mark 70" in page
    with app.app_context():
        course = training.get_course(db.session, "QUIZ-1")
        (row,) = training.status_rows(
            db.session, TODAY, training.StatusFilter(user_id=world["emp"], course_id=course.id)
        )
        assert row.status == "overdue"
    _post(client, "/training/QUIZ-1/complete", {"completed_on": "2026-05-21", "score": "70"})
    with app.app_context():
        (row,) = training.status_rows(
            db.session, TODAY, training.StatusFilter(user_id=world["emp"], course_id=course.id)
        )
        assert row.status == "complete"


# Department matrix and group sessions --------------------------------------------------------


def test_manager_sees_own_department_matrix(app, world):
    """A manager sees their department's people with statuses, not other departments',
    even when asking for another department."""
    client = _client(app, "mgr@example.jp")
    page = _page(client, "/training/department")
    assert "営業 一郎" in page and "営業 二郎" in page and "営業 課長" in page
    assert "開発 三郎" not in page
    assert "Overdue" in page and "Record a training session" in page
    page = _page(client, f"/training/department?department={world['dev']}")
    assert "営業 一郎" in page and "開発 三郎" not in page


def test_admin_chooses_the_department(app, world, as_role):
    """An admin may look at any department's matrix."""
    page = _page(as_role("admin"), f"/training/department?department={world['dev']}")
    assert "開発 三郎" in page and "営業 一郎" not in page
    assert "Secure coding" in page


def test_admin_without_department_must_choose_one(app, world, as_role):
    """An admin who belongs to no department gets 'not found' without ?department=."""
    response = as_role("admin").get("/training/department", headers=EN)
    assert response.status_code == 404


def test_manager_records_a_group_session(app, world):
    """A manager records one session for several people of their department."""
    client = _client(app, "mgr@example.jp")
    response = _post(
        client,
        "/training/department/session",
        {
            "course": "SEC-1",
            "completed_on": "2026-05-28",
            "people": [str(world["emp"]), str(world["colleague"])],
        },
    )
    assert response.status_code == 302
    assert "Recorded 2 completions." in _page(client, "/training/department")
    assert _completions(app) == [
        ("SEC-1", "colleague@example.jp", date(2026, 5, 28), "manager"),
        ("SEC-1", "emp@example.jp", date(2026, 5, 28), "manager"),
    ]


def test_manager_cannot_record_for_another_department(app, world):
    """A session including someone from another department is refused and nothing is written,
    not even for the manager's own people."""
    client = _client(app, "mgr@example.jp")
    _post(
        client,
        "/training/department/session",
        {
            "course": "SEC-1",
            "completed_on": "2026-05-28",
            "people": [str(world["emp"]), str(world["developer"])],
        },
    )
    page = _page(client, "/training/department")
    assert "You may record completions only for yourself or your department." in page
    assert _completions(app) == []


def test_group_session_needs_people(app, world):
    """A session with nobody ticked is refused."""
    client = _client(app, "mgr@example.jp")
    _post(client, "/training/department/session", {"course": "SEC-1", "completed_on": "2026-05-28"})
    assert "choose at least one person" in _page(client, "/training/department")
    assert _completions(app) == []


# Organization ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "auditor"])
def test_organization_rollup(app, world, as_role, role):
    """Admins and auditors see completion % per department and course and who is overdue."""
    _record(app, "SEC-1", world["emp"], date(2026, 5, 20))
    with app.app_context():
        training.grant_exemption(
            db.session,
            "test",
            training.get_course(db.session, "SEC-1"),
            db.session.get(User, world["colleague"]),
            "出向中",
        )
        db.session.commit()
        cells = training.rollup_table(db.session, TODAY)
        course_id = training.get_course(db.session, "SEC-1").id
    assert cells[(world["sales"], course_id)]["percent"] == 50
    page = _page(as_role(role), "/training/organization")
    assert "Training across the organization" in page
    assert "50%" in page and "1/2" in page
    assert "営業 課長" in page and "開発 三郎" in page  # overdue list
    assert "Download CSV" in page


def test_organization_csv_is_formula_safe(app, world, as_role):
    """The CSV lists every person and course; a name that looks like a formula is quoted."""
    _record(app, "SEC-1", world["emp"], date(2026, 5, 20))
    with app.app_context():
        make_user(
            db.session,
            name='=HYPERLINK("http://x","y")',
            employee_id="X001",
            hired_on=HIRED,
            department=db.session.get(Department, world["dev"]),
        )
        db.session.commit()
        dev_label = db.session.get(Department, world["dev"]).label("en")
    response = as_role("auditor").get("/training/organization.csv", headers=EN)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0] == [
        "employee_id",
        "name",
        "department",
        "course",
        "status",
        "completed_on",
        "valid_until",
        "due_on",
    ]
    formula = [r for r in rows if r[0] == "X001"]
    assert formula and all(r[1] == '\'=HYPERLINK("http://x","y")' for r in formula)
    assert {r[3] for r in formula} == {"SEC-1", "CERT-1", "PLEDGE", "DEV-1"}
    assert all(r[2] == dev_label for r in formula)
    emp = [r for r in rows if r[0] == "S002" and r[3] == "SEC-1"]
    assert emp == [
        [
            "S002",
            "営業 一郎",
            emp[0][2],
            "SEC-1",
            "complete",
            "2026-05-20",
            "2027-05-20",
            "2027-05-20",
        ]
    ]
    late = [r for r in rows if r[0] == "S001" and r[3] == "SEC-1"]
    assert late[0][4:] == ["overdue", "", "", "2026-05-01"]


# Courses admin ------------------------------------------------------------------------------


def _course_form(**fields) -> dict:
    return {
        "code": "NEW-1",
        "kind": "training",
        "title_ja": "新しい研修",
        "title_en": "New course",
        "recurrence_months": "12",
        "new_hire_grace_days": "30",
        "due_soon_days": "30",
        "audience": "all",
    } | fields


def test_course_list(app, world, as_role):
    """The course list shows every active course with its recurrence and audience."""
    page = _page(as_role("admin"), "/training/courses")
    for code in ("SEC-1", "CERT-1", "PLEDGE", "DEV-1"):
        assert f"/training/courses/{code}" in page
    assert "12 months" in page and "Once" in page and "Everyone" in page


def test_create_course_with_errors_keeps_input(app, world, as_role):
    """Invalid course settings are shown on their fields, the input is kept, nothing is saved."""
    response = _post(
        as_role("admin"),
        "/training/courses/new",
        _course_form(code="sec-1", title_en="", pass_mark="70", description="説明文です"),
    )
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert "is already used" in page and "is required" in page
    assert "a pass mark needs a recorded score" in page
    assert 'value="新しい研修"' in page and "説明文です" in page and 'value="70"' in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Course)) == 4


def test_create_course_for_departments_and_roles(app, world, as_role):
    """A new course for selected departments and roles is saved and shown for editing."""
    client = as_role("admin")
    response = _post(
        client,
        "/training/courses/new",
        _course_form(
            audience="some",
            departments=[str(world["sales"])],
            roles=["manager"],
            recurrence_months="6",
            certificate_required="1",
        ),
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/training/courses/NEW-1")
    with app.app_context():
        course = training.get_course(db.session, "NEW-1")
        assert not course.audience_all and course.certificate_required
        assert course.recurrence_months == 6 and course.effective_from == TODAY
        assert [r.department_id for r in course.department_rows] == [world["sales"]]
        assert [r.role for r in course.role_rows] == ["manager"]
    page = _page(client, "/training/courses/NEW-1")
    assert "Saved." in page and 'value="New course"' in page
    assert f'value="{world["sales"]}" checked' in page and 'value="manager" checked' in page


def test_edit_course(app, world, as_role):
    """Editing changes the course and is audited; invalid edits keep the input."""
    client = as_role("admin")
    form = _course_form(code="SEC-1", title_en="Security basics 2026", recurrence_months="24")
    assert _post(client, "/training/courses/SEC-1", form).status_code == 302
    with app.app_context():
        course = training.get_course(db.session, "SEC-1")
        assert course.title_en == "Security basics 2026" and course.recurrence_months == 24
        assert db.session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "course.update")
        )
    response = _post(client, "/training/courses/SEC-1", form | {"due_soon_days": "400"})
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert "a whole number from 0 to 365" in page and 'value="400"' in page


def test_retire_course(app, world, as_role):
    """A retired course leaves the course list (unless asked for) and people's training."""
    client = as_role("admin")
    response = _post(client, "/training/courses/SEC-1/retire", {"active": "0"})
    assert response.status_code == 302
    assert "/training/courses/SEC-1" not in _page(client, "/training/courses")
    page = _page(client, "/training/courses?retired=1")
    assert "/training/courses/SEC-1" in page and "Retired" in page
    assert "Security basics" not in _page(_client(app, "emp@example.jp"))
    _post(client, "/training/courses/SEC-1/retire", {"active": "1"})
    assert "Security basics" in _page(_client(app, "emp@example.jp"))
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.object_id == "SEC-1")
        ).all()
        assert "course.retire" in actions and "course.restore" in actions


def test_exempt_a_person(app, world, as_role):
    """An admin exempts a person with a reason; their status shows exempt with no form."""
    client = as_role("admin")
    response = _post(
        client, "/training/courses/SEC-1/exempt", {"email": "EMP@example.jp", "reason": "休職中"}
    )
    assert response.status_code == 302
    assert "Exemption recorded." in _page(client, "/training/courses/SEC-1")
    with app.app_context():
        exemption = db.session.scalar(select(Exemption))
        assert exemption.user_id == world["emp"] and exemption.reason == "休職中"
        assert exemption.granted_by_label.endswith("<admin@example.jp>")
    page = _page(_client(app, "emp@example.jp"))
    assert "Exempt" in page
    assert 'action="/training/SEC-1/complete"' not in page


@pytest.mark.parametrize(
    ("form", "message"),
    [
        (
            {"email": "nobody@example.jp", "reason": "休職中"},
            "No user with email 'nobody@example.jp'.",
        ),
        ({"email": "emp@example.jp", "reason": " "}, "is required"),
    ],
)
def test_exemption_errors(app, world, as_role, form, message):
    """An exemption for an unknown person or without a reason is refused."""
    client = as_role("admin")
    _post(client, "/training/courses/SEC-1/exempt", form)
    assert message in _page(client, "/training/courses/SEC-1")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Exemption)) == 0


# Import page --------------------------------------------------------------------------------


def _upload(client, body: bytes, **fields):
    return _post(
        client,
        "/training/import",
        {"file": (io.BytesIO(body), "lms.csv"), **fields},
        content_type="multipart/form-data",
    )


GOOD = (
    "employee_id,course_code,completed_on,score\r\n"
    "S002,SEC-1,2026-05-01,\r\n"
    "D001,DEV-1,2026-05-02,\r\n"
)


def test_import_page_imports_completions(app, world, as_role):
    """A good file is imported; uploading it again adds nothing."""
    client = as_role("admin")
    response = _upload(client, GOOD.encode())
    assert response.status_code == 200
    assert "2 completions added, 0 already recorded." in response.get_data(as_text=True)
    assert _completions(app) == [
        ("DEV-1", "dev@example.jp", date(2026, 5, 2), "import"),
        ("SEC-1", "emp@example.jp", date(2026, 5, 1), "import"),
    ]
    response = _upload(client, GOOD.encode())
    assert "0 completions added, 2 already recorded." in response.get_data(as_text=True)
    assert len(_completions(app)) == 2


def test_import_page_cp932(app, world, as_role):
    """A Shift_JIS (CP932) file from Excel is imported when that encoding is chosen."""
    body = "email,course_code,completed_on\r\nemp@example.jp,SEC-1,2026年5月1日\r\n"
    response = _upload(as_role("admin"), body.encode("cp932"), encoding="cp932")
    assert response.status_code == 200
    assert _completions(app) == [("SEC-1", "emp@example.jp", date(2026, 5, 1), "import")]


def test_import_page_reports_problems_and_writes_nothing(app, world, as_role):
    """A file with a bad row is refused with 'line N: column: problem'; nothing is written."""
    body = GOOD + "S003,NOPE,2026-05-03,\r\n"
    response = _upload(as_role("admin"), body.encode())
    assert response.status_code == 400
    page = html.unescape(response.get_data(as_text=True))
    assert "Nothing was imported." in page
    assert "line 4: course_code: unknown course 'NOPE'" in page
    assert _completions(app) == []


def test_import_page_skip_invalid(app, world, as_role):
    """With 'skip invalid' the good rows are imported and the bad ones listed."""
    body = GOOD + "S003,SEC-1,2026-07-01,\r\n"
    response = _upload(as_role("admin"), body.encode(), skip_invalid="1")
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    assert "2 completions added, 0 already recorded." in page
    assert "line 4: completed_on: 2026-07-01 is in the future" in page
    assert len(_completions(app)) == 2


def test_import_page_without_file(app, world, as_role):
    """Submitting without a file asks for one."""
    client = as_role("admin")
    response = _post(client, "/training/import", {}, content_type="multipart/form-data")
    assert response.status_code == 302
    assert "choose a file to upload" in _page(client, "/training/import")
