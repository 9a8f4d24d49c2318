"""Training: courses, each person's status per course (computed in SQL), completions,
exemptions, roll-ups, control figures, the completion import and training reminders."""

from __future__ import annotations

import io
import json
from datetime import date

import pytest
from sqlalchemy import func, select

from auditapp import access
from auditapp.errors import Forbidden, InvalidInput
from auditapp.models import AuditEvent, Completion, Course, Exemption
from auditapp.services import catalog, checks, reminders, training
from tests.factories import make_course, make_department, make_user

EFFECTIVE = date(2026, 4, 1)
HIRED = "2024-04-01"


def _row(session, person, course, today: date):
    """The status row of one person for one course, or None when they need not take it."""
    rows = training.status_rows(
        session, today, training.StatusFilter(user_id=person.id, course_id=course.id)
    )
    assert len(rows) <= 1
    return rows[0] if rows else None


def _day(value) -> date | None:
    """A date column as a date (whatever the database driver returned)."""
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _complete(session, course, person, day, *, actor=None, score=None, agreed=False, today=None):
    """Record a completion through the service, checked as of `today` (default: that day)."""
    plan = training.plan_completion(
        session,
        actor or person,
        course,
        person,
        completed_on=day,
        score=score,
        agreed=agreed,
        has_certificate=True,
        today=today or (day if isinstance(day, date) else date(2030, 1, 1)),
    )
    return training.record_completion(session, actor or person, plan, source="self")


def _events(session, action: str) -> list[AuditEvent]:
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def _count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


# add_months ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        (date(2026, 1, 31), 1, date(2026, 2, 28)),
        (date(2028, 1, 31), 1, date(2028, 2, 29)),
        (date(2026, 3, 31), 1, date(2026, 4, 30)),
        (date(2026, 11, 30), 3, date(2027, 2, 28)),
        (date(2026, 12, 15), 1, date(2027, 1, 15)),
        (date(2026, 4, 1), 12, date(2027, 4, 1)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2026, 5, 31), 0, date(2026, 5, 31)),
    ],
)
def test_add_months_clamps_to_month_end(day, months, expected):
    """N months later is the same day, or the month's last day when that day does not exist."""
    assert training.add_months(day, months) == expected


# Courses ---------------------------------------------------------------------------------


def test_create_course_sets_effective_from_and_is_audited(session):
    """A new course takes effect on the day it is created and its settings are audited."""
    dept = make_department(session, code="SALES")
    course = make_course(
        session,
        code="SEC-1",
        today=EFFECTIVE,
        audience="some",
        departments=[dept],
        roles=["manager"],
        recurrence_months="6",
        certificate_required=True,
        score_required=True,
        pass_mark="70",
        control_codes="HUM-01 HUM-02",
    )
    assert course.effective_from == EFFECTIVE and course.active
    assert course.recurrence_months == 6 and course.pass_mark == 70
    assert course.controls == ["HUM-01", "HUM-02"]
    event = _events(session, "course.create")[-1]
    after = json.loads(event.after_json)
    assert event.object_id == "SEC-1"
    assert after["departments"] == [dept.id] and after["roles"] == ["manager"]
    assert after["certificate_required"] is True and after["audience_all"] is False


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"code": ""}, "code", "is required"),
        ({"code": "sec-1"}, "code", "is already used"),
        ({"title_en": "x" * 201}, "title_en", "is too long (201 characters, at most 200)"),
        ({"pass_mark": "70"}, "pass_mark", "a pass mark needs a recorded score"),
        (
            {"pass_mark": "101", "score_required": True},
            "pass_mark",
            "a whole number from 0 to 100",
        ),
        ({"recurrence_months": "121"}, "recurrence_months", "a whole number from 0 to 120"),
        ({"recurrence_months": "-1"}, "recurrence_months", "a whole number from 0 to 120"),
        ({"due_soon_days": "abc"}, "due_soon_days", "a whole number from 0 to 365"),
        ({"audience": "some"}, "audience", "choose departments or roles, or everyone"),
        (
            {"kind": "acknowledgement"},
            "ack_text",
            "an acknowledgement needs the text people agree to",
        ),
        ({"kind": "quiz"}, "kind", "choose training or acknowledgement"),
        (
            {"content_url": "javascript:alert(1)"},
            "content_url",
            "use a web address starting with https://",
        ),
    ],
)
def test_create_course_refuses_bad_input(session, overrides, field, message):
    """Each invalid setting is reported on its field and no course is created."""
    make_course(session, code="SEC-1")
    with pytest.raises(InvalidInput) as exc:
        make_course(session, **({"code": "NEW-1"} | overrides))
    assert str(exc.value.errors[field]) == message
    assert _count(session, Course) == 1


def test_create_course_refuses_unknown_department(session):
    """A course for a department that does not exist is refused as invalid input."""
    with pytest.raises(InvalidInput) as exc:
        make_course(session, audience="some", departments=[99999])
    assert "departments" in exc.value.errors


def test_update_course_moves_valid_until_with_recurrence(session):
    """Changing the recurrence recomputes every completion's validity (0 = never expires)."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session, code="SEC-1", recurrence_months=12)
    row = _complete(session, course, person, date(2026, 1, 31))
    assert row.valid_until == date(2027, 1, 31)
    data = training.snapshot(course) | {"audience": "all", "recurrence_months": "13"}
    training.update_course(session, "test", course, data)
    assert row.valid_until == date(2027, 2, 28)
    training.update_course(session, "test", course, data | {"recurrence_months": "0"})
    assert row.valid_until is None
    event = _events(session, "course.update")[-1]
    assert json.loads(event.before_json)["recurrence_months"] == 13
    assert json.loads(event.after_json)["recurrence_months"] == 0


def test_retired_course_disappears_from_status(session):
    """A retired course is due for nobody, keeps its history, refuses new completions,
    and comes back when restored."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session)
    _complete(session, course, person, date(2026, 4, 10))
    training.set_active(session, "test", course, False)
    assert training.status_rows(session, date(2026, 5, 1)) == []
    assert course not in training.list_courses(session)
    assert course in training.list_courses(session, include_retired=True)
    assert len(training.history(session, person)) == 1
    with pytest.raises(InvalidInput) as exc:
        _complete(session, course, person, date(2026, 4, 20))
    assert str(exc.value) == "This course is retired."
    training.set_active(session, "test", course, True)
    assert _row(session, person, course, date(2026, 5, 1)).status == "complete"
    assert [e.action for e in _events(session, "course.retire")] == ["course.retire"]
    assert len(_events(session, "course.restore")) == 1


# Status ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("today", "status"),
    [
        (date(2026, 4, 1), "not_started"),
        (date(2026, 4, 30), "not_started"),
        (date(2026, 5, 1), "due_soon"),
        (date(2026, 5, 31), "due_soon"),
        (date(2026, 6, 1), "overdue"),
    ],
)
def test_status_without_completion_follows_grace_and_due_soon_window(session, today, status):
    """Someone employed before the course started is due grace days after it took effect:
    not started, then due soon within the window, then overdue the day after."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session, today=EFFECTIVE, new_hire_grace_days=60, due_soon_days=30)
    row = _row(session, person, course, today)
    assert row.status == status
    assert _day(row.due_on) == date(2026, 5, 31)
    assert row.completed_on is None and row.valid_until is None


@pytest.mark.parametrize(
    ("today", "newcomer", "veteran"),
    [
        (date(2026, 6, 10), "not_started", "overdue"),
        (date(2026, 6, 26), "due_soon", "overdue"),
        (date(2026, 7, 10), "due_soon", "overdue"),
        (date(2026, 7, 11), "overdue", "overdue"),
    ],
)
def test_new_hire_grace_counts_from_hired_on(session, today, newcomer, veteran):
    """A person hired after the course took effect is due grace days after their hiring."""
    new = make_user(session, hired_on="2026-06-10")
    old = make_user(session, hired_on=HIRED)
    course = make_course(session, today=EFFECTIVE, new_hire_grace_days=30, due_soon_days=14)
    assert _row(session, new, course, today).status == newcomer
    assert _day(_row(session, new, course, today).due_on) == date(2026, 7, 10)
    assert _row(session, old, course, today).status == veteran
    assert _day(_row(session, old, course, today).due_on) == date(2026, 5, 1)


@pytest.mark.parametrize(
    ("today", "status"),
    [
        (date(2026, 6, 1), "complete"),
        (date(2027, 3, 10), "complete"),
        (date(2027, 3, 11), "due_soon"),
        (date(2027, 4, 10), "due_soon"),
        (date(2027, 4, 11), "overdue"),
    ],
)
def test_status_with_completion_expires_after_recurrence(session, today, status):
    """A completion is valid for the recurrence: complete, due soon in the window before
    valid_until, overdue after it."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session, today=EFFECTIVE, recurrence_months=12, due_soon_days=30)
    _complete(session, course, person, date(2026, 4, 10))
    row = _row(session, person, course, today)
    assert row.status == status
    assert _day(row.completed_on) == date(2026, 4, 10)
    assert _day(row.valid_until) == date(2027, 4, 10)
    assert _day(row.due_on) == date(2027, 4, 10)


def test_newer_completion_renews_validity(session):
    """Taking the course again extends validity from the newer completion."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session, recurrence_months=12)
    _complete(session, course, person, date(2026, 4, 10))
    _complete(session, course, person, date(2027, 4, 1))
    row = _row(session, person, course, date(2027, 4, 20))
    assert row.status == "complete" and _day(row.valid_until) == date(2028, 4, 1)


def test_monthly_course_validity_clamped_at_month_end(session):
    """A completion on Jan 31 of a monthly course is valid until Feb 28, overdue on Mar 1."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session, today=date(2026, 1, 1), recurrence_months=1, due_soon_days=7)
    row = _complete(session, course, person, date(2026, 1, 31))
    assert row.valid_until == date(2026, 2, 28)
    assert _row(session, person, course, date(2026, 2, 20)).status == "complete"
    assert _row(session, person, course, date(2026, 2, 21)).status == "due_soon"
    assert _row(session, person, course, date(2026, 2, 28)).status == "due_soon"
    assert _row(session, person, course, date(2026, 3, 1)).status == "overdue"


@pytest.mark.parametrize(
    ("today", "first_time", "renewal"),
    [
        (date(2026, 3, 31), "not_started", "complete"),
        (date(2026, 4, 1), "due_soon", "due_soon"),
        (date(2026, 5, 1), "due_soon", "due_soon"),
        (date(2026, 5, 2), "overdue", "overdue"),
    ],
)
def test_due_soon_window_is_the_same_for_first_time_and_renewal(
    session, today, first_time, renewal
):
    """With the same due date, a first completion and a renewal enter the due-soon window
    on the same day (due_soon_days before it) and are overdue the day after it."""
    renewer = make_user(session, hired_on=HIRED)
    first_timer = make_user(session, hired_on=HIRED)
    course = make_course(session, today=EFFECTIVE, new_hire_grace_days=30, due_soon_days=30)
    _complete(session, course, renewer, date(2025, 5, 1))  # valid until 2026-05-01
    first = _row(session, first_timer, course, today)
    again = _row(session, renewer, course, today)
    assert _day(first.due_on) == _day(again.due_on) == date(2026, 5, 1)
    assert (first.status, again.status) == (first_time, renewal)


def test_once_course_never_expires(session):
    """A course taken once (recurrence 0) stays complete with no expiry."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session, recurrence_months=0)
    row = _complete(session, course, person, date(2026, 4, 10))
    assert row.valid_until is None
    status = _row(session, person, course, date(2036, 4, 10))
    assert status.status == "complete"
    assert status.valid_until is None and status.due_on is None
    assert status.valid_now == 1


def test_failed_score_does_not_count(session):
    """A score below the pass mark is recorded as not passed and leaves the person due;
    a passing score completes the course."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session, score_required=True, pass_mark="70")
    failed = _complete(session, course, person, date(2026, 4, 10), score="69")
    assert failed.passed is False and failed.score == 69
    row = _row(session, person, course, date(2026, 6, 1))
    assert row.status == "overdue" and row.completed_on is None
    passed = _complete(session, course, person, date(2026, 6, 1), score="70")
    assert passed.passed is True
    row = _row(session, person, course, date(2026, 6, 1))
    assert row.status == "complete" and _day(row.completed_on) == date(2026, 6, 1)


def test_exemption_with_reason_and_who_granted_it(session):
    """An exempt person's status is exempt; the reason and the granting admin are kept and
    audited; granting again updates the one exemption."""
    admin = make_user(session, roles=["admin"], name="管理 者", email="boss@example.jp")
    person = make_user(session, hired_on=HIRED)
    course = make_course(session, code="SEC-1")
    training.grant_exemption(session, admin, course, person, "育児休業中")
    row = _row(session, person, course, date(2026, 6, 1))
    assert row.status == "exempt"
    training.grant_exemption(session, admin, course, person, "  長期休職中  ")
    exemption = session.scalar(select(Exemption))
    assert _count(session, Exemption) == 1
    assert exemption.reason == "長期休職中" and exemption.granted_by_id == admin.id
    assert exemption.granted_by_label == "管理 者 <boss@example.jp>"
    event = _events(session, "training.exempt")[-1]
    assert event.object_id == "SEC-1"
    assert json.loads(event.after_json) == {"person": person.employee_id, "reason": "長期休職中"}


def test_exemption_needs_a_reason(session):
    """An exemption without a reason is refused."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session)
    with pytest.raises(InvalidInput) as exc:
        training.grant_exemption(session, "test", course, person, "   ")
    assert str(exc.value.errors["reason"]) == "is required"
    assert _count(session, Exemption) == 0


def test_audience_by_department(session):
    """A course for a department is due for its members only."""
    sales, dev = make_department(session, code="SALES"), make_department(session, code="DEV")
    seller = make_user(session, department=sales, hired_on=HIRED)
    developer = make_user(session, department=dev, hired_on=HIRED)
    nobody = make_user(session, hired_on=HIRED)
    course = make_course(session, audience="some", departments=[sales])
    today = date(2026, 6, 1)
    assert _row(session, seller, course, today).status == "overdue"
    assert _row(session, developer, course, today) is None
    assert _row(session, nobody, course, today) is None


def test_audience_by_role(session):
    """A course for a role is due for its holders only; departments and roles add up."""
    sales = make_department(session, code="SALES")
    manager = make_user(session, roles=["manager", "employee"], hired_on=HIRED)
    employee = make_user(session, roles=["employee"], hired_on=HIRED)
    seller = make_user(session, roles=["employee"], department=sales, hired_on=HIRED)
    managers = make_course(session, audience="some", roles=["manager"])
    both = make_course(session, audience="some", roles=["manager"], departments=[sales])
    today = date(2026, 6, 1)
    rows = training.status_rows(session, today)
    assert {r.user_id for r in rows if r.course_id == managers.id} == {manager.id}
    assert {r.user_id for r in rows if r.course_id == both.id} == {manager.id, seller.id}
    assert _row(session, employee, managers, today) is None


def test_audience_by_role_when_nobody_holds_it(session):
    """A course for a role nobody holds is due for nobody."""
    make_user(session, roles=["employee"], hired_on=HIRED)
    make_course(session, audience="some", roles=["auditor"])
    assert training.status_rows(session, date(2026, 6, 1)) == []


def test_inactive_people_are_not_listed(session):
    """People who left are not due any course."""
    from auditapp.services import users

    person = make_user(session, hired_on=HIRED)
    course = make_course(session)
    users.deactivate(session, "test", person)
    assert _row(session, person, course, date(2026, 6, 1)) is None


def test_status_filter_by_status(session):
    """The status table can be filtered to one status (e.g. the overdue list)."""
    done = make_user(session, hired_on=HIRED)
    late = make_user(session, hired_on=HIRED)
    course = make_course(session)
    _complete(session, course, done, date(2026, 4, 10))
    rows = training.status_rows(session, date(2026, 6, 1), training.StatusFilter(status="overdue"))
    assert [(r.user_id, r.status) for r in rows] == [(late.id, "overdue")]


# Roll-up and control figures ----------------------------------------------------------------


def test_rollup_table_percent_per_department(session):
    """Per department and course: counts per status and % valid, exempt people left out."""
    sales, dev = make_department(session, code="SALES"), make_department(session, code="DEV")
    done, late, exempt = (make_user(session, department=sales, hired_on=HIRED) for _ in range(3))
    dev_done = make_user(session, department=dev, hired_on=HIRED)
    course = make_course(session)
    _complete(session, course, done, date(2026, 4, 10))
    _complete(session, course, dev_done, date(2026, 4, 10))
    training.grant_exemption(session, "test", course, exempt, "出向中")
    cells = training.rollup_table(session, date(2026, 6, 1))
    cell = cells[(sales.id, course.id)]
    assert (cell["total"], cell["complete"], cell["overdue"], cell["exempt"]) == (3, 1, 1, 1)
    assert cell["valid"] == 1 and cell["percent"] == 50
    assert cells[(dev.id, course.id)]["percent"] == 100
    assert late.department_id == sales.id


def test_rollup_counts_due_soon_people_still_valid(session):
    """Someone whose completion is about to expire still counts as valid (due soon)."""
    dept = make_department(session)
    person = make_user(session, department=dept, hired_on=HIRED)
    course = make_course(session)
    _complete(session, course, person, date(2026, 4, 10))
    cell = training.rollup_table(session, date(2027, 4, 1))[(dept.id, course.id)]
    assert cell["due_soon"] == 1 and cell["valid"] == 1 and cell["percent"] == 100


def test_figures_for_control_named_in_control_codes(app, session):
    """A control a course names shows its completion % and who is overdue; others show none."""
    catalog.sync(session, "test", app.config["CATALOG_PATH"])
    done = make_user(session, hired_on=HIRED, name="完了 太郎")
    make_user(session, hired_on=HIRED, name="遅延 花子")
    exempt = make_user(session, hired_on=HIRED, name="免除 次郎")
    course = make_course(session, code="SEC-1", control_codes="HUM-01 HUM-02")
    _complete(session, course, done, date(2026, 4, 10))
    training.grant_exemption(session, "test", course, exempt, "休職中")
    today = date(2026, 6, 1)
    expected = {"SEC-1 completion %": 50.0, "SEC-1 overdue people": "遅延 花子"}
    assert training.figures_for_control(session, catalog.get(session, "HUM-01"), today) == expected
    assert checks.figures_for(session, catalog.get(session, "HUM-02"), today) == expected
    assert training.figures_for_control(session, catalog.get(session, "ORG-01"), today) is None
    assert checks.figures_for(session, catalog.get(session, "ORG-01"), today) == {}


def test_figures_for_control_when_everyone_is_done(app, session):
    """With nobody overdue the figures read 100% and '0'."""
    catalog.sync(session, "test", app.config["CATALOG_PATH"])
    person = make_user(session, hired_on=HIRED)
    make_course(session, code="SEC-1", control_codes="HUM-01")
    _complete(session, training.get_course(session, "sec-1"), person, date(2026, 4, 10))
    figures = training.figures_for_control(
        session, catalog.get(session, "HUM-01"), date(2026, 6, 1)
    )
    assert figures == {"SEC-1 completion %": 100.0, "SEC-1 overdue people": "0"}


# Completions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"completed_on": "2026-06-02"}, "completed_on", "must not be in the future"),
        (
            {"completed_on": "2024-03-31"},
            "completed_on",
            "is before the person was hired (2024-04-01)",
        ),
        ({"completed_on": ""}, "completed_on", "is required"),
        (
            {"completed_on": "2026-02-30"},
            "completed_on",
            "'2026-02-30' is not a real date (day is out of range for month)",
        ),
        ({"score": "101"}, "score", "a whole number from 0 to 100"),
        ({"score": "-1"}, "score", "a whole number from 0 to 100"),
        ({"score": "abc"}, "score", "a whole number from 0 to 100"),
        ({"score": ""}, "score", "is required for this course"),
        ({"has_certificate": False}, "certificate", "this course needs a certificate file"),
    ],
)
def test_plan_completion_refuses_bad_input(session, fields, field, message):
    """Dates in the future or before hiring, scores outside 0–100, a missing score or
    certificate are each refused on their field."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session, score_required=True, pass_mark="60", certificate_required=True)
    args = {"completed_on": "2026-05-01", "score": "80", "has_certificate": True} | fields
    with pytest.raises(InvalidInput) as exc:
        training.plan_completion(
            session, person, course, person, agreed=False, today=date(2026, 6, 1), **args
        )
    assert {k: str(v) for k, v in exc.value.errors.items()} == {field: message}


def test_acknowledgement_needs_agreement_and_records_agreed_at(session):
    """A pledge is recorded only with the explicit agreement, and keeps when it was agreed."""
    person = make_user(session, hired_on=HIRED)
    pledge = make_course(
        session, kind="acknowledgement", ack_text="秘密を守ります。", recurrence_months=0
    )
    with pytest.raises(InvalidInput) as exc:
        _complete(session, pledge, person, date(2026, 4, 2), agreed=False)
    assert str(exc.value.errors["agreed"]) == "tick the box to agree"
    row = _complete(session, pledge, person, date(2026, 4, 2), agreed=True)
    assert row.agreed_at is not None
    assert _row(session, person, pledge, date(2030, 1, 1)).status == "complete"
    training_row = _complete(session, make_course(session), person, date(2026, 4, 2))
    assert training_row.agreed_at is None


def test_employee_cannot_record_for_someone_else(session):
    """An employee records only their own completions."""
    dept = make_department(session)
    employee = make_user(session, department=dept, hired_on=HIRED)
    colleague = make_user(session, department=dept, hired_on=HIRED)
    course = make_course(session)
    with pytest.raises(Forbidden) as exc:
        _complete(session, course, colleague, date(2026, 4, 10), actor=employee)
    assert str(exc.value) == "You may record completions only for yourself or your department."
    assert _count(session, Completion) == 0


def test_who_may_record_for_whom(session):
    """Managers record for their own department only, admins and the system for anyone."""
    sales, dev = make_department(session, code="SALES"), make_department(session, code="DEV")
    manager = make_user(session, roles=["manager"], department=sales, hired_on=HIRED)
    loose_manager = make_user(session, roles=["manager"], hired_on=HIRED)
    admin = make_user(session, roles=["admin"], hired_on=HIRED)
    seller = make_user(session, department=sales, hired_on=HIRED)
    developer = make_user(session, department=dev, hired_on=HIRED)
    homeless = make_user(session, hired_on=HIRED)
    assert access.may_record_training_for(manager, seller)
    assert not access.may_record_training_for(manager, developer)
    assert not access.may_record_training_for(manager, homeless)
    assert not access.may_record_training_for(loose_manager, homeless)
    assert access.may_record_training_for(admin, developer)
    assert access.may_record_training_for("cli:root", developer)
    course = make_course(session)
    with pytest.raises(Forbidden):
        _complete(session, course, developer, date(2026, 4, 10), actor=manager)


def test_record_completion_once_per_day_and_audited(session):
    """Recording the same day twice keeps one completion; the record names course, person,
    date, score and source in the audit trail."""
    person = make_user(session, hired_on=HIRED, name="山田 太郎", email="taro@example.jp")
    course = make_course(session, code="SEC-1", score_required=True, pass_mark="60")
    first = _complete(session, course, person, date(2026, 4, 10), score="85")
    again = _complete(session, course, person, date(2026, 4, 10), score="90")
    assert again.id == first.id and again.score == 85
    assert _count(session, Completion) == 1
    assert first.source == "self" and first.recorded_by_id == person.id
    assert first.recorded_by_label == "山田 太郎 <taro@example.jp>"
    (event,) = _events(session, "training.complete")
    assert event.object_id == str(first.id)
    assert json.loads(event.after_json) == {
        "course": "SEC-1",
        "person": person.employee_id,
        "completed_on": "2026-04-10",
        "score": 85,
        "passed": True,
        "source": "self",
        "agreed": False,
    }


def test_passing_retake_on_the_same_day_counts(session):
    """A passing retake on the day of a failed attempt completes the course."""
    person = make_user(session, hired_on=HIRED)
    course = make_course(session, score_required=True, pass_mark="70")
    _complete(session, course, person, date(2026, 5, 20), score="50")
    _complete(session, course, person, date(2026, 5, 20), score="90")
    assert _row(session, person, course, date(2026, 6, 1)).status == "complete"


def test_record_group_for_own_department(session):
    """A manager records one session for several people of their department."""
    sales, dev = make_department(session, code="SALES"), make_department(session, code="DEV")
    manager = make_user(session, roles=["manager"], department=sales, hired_on=HIRED)
    a, b = (make_user(session, department=sales, hired_on=HIRED) for _ in range(2))
    outsider = make_user(session, department=dev, hired_on=HIRED)
    course = make_course(session)
    rows = training.record_group(
        session, manager, course, [a, b], completed_on="2026/05/20", today=date(2026, 6, 1)
    )
    assert {(r.user_id, r.source, r.recorded_by_id) for r in rows} == {
        (a.id, "manager", manager.id),
        (b.id, "manager", manager.id),
    }
    assert all(r.completed_on == date(2026, 5, 20) for r in rows)
    with pytest.raises(Forbidden):
        training.record_group(
            session, manager, course, [outsider], completed_on="2026-05-20", today=date(2026, 6, 1)
        )
    with pytest.raises(InvalidInput) as exc:
        training.record_group(
            session, manager, course, [], completed_on="2026-05-20", today=date(2026, 6, 1)
        )
    assert str(exc.value.errors["people"]) == "choose at least one person"


# Import (the command line and the page are tested in their own files) -----------------------


def _csv(*lines: str) -> io.BytesIO:
    return io.BytesIO(("\r\n".join(lines) + "\r\n").encode("utf-8"))


def test_import_by_email_with_scores(session):
    """Rows name people by email; a score below the pass mark is imported as not passed;
    validity follows the course's recurrence; the import is audited."""
    a = make_user(session, hired_on=HIRED, email="a@example.jp")
    b = make_user(session, hired_on=HIRED, email="b@example.jp")
    make_course(session, code="SEC-1", score_required=True, pass_mark="70")
    result = training.import_completions(
        session,
        "cli:test",
        _csv(
            "email,course_code,completed_on,score",
            "A@Example.jp,sec-1,2026-01-31,90",
            "b@example.jp,SEC-1,2026/02/01,50",
        ),
        today=date(2026, 6, 1),
    )
    assert (result.written, result.added, result.already, result.errors) == (True, 2, 0, [])
    rows = {r.user_id: r for r in session.scalars(select(Completion))}
    assert rows[a.id].passed and rows[a.id].valid_until == date(2027, 1, 31)
    assert rows[a.id].source == "import" and rows[a.id].recorded_by_label == "cli:test"
    assert not rows[b.id].passed and rows[b.id].score == 50
    event = _events(session, "training.import")[-1]
    assert json.loads(event.after_json) == {"added": 2, "already": 0, "skipped_errors": 0}


def test_import_refuses_inactive_people(session):
    """People who left are unknown to the import."""
    from auditapp.services import users

    person = make_user(session, hired_on=HIRED, employee_id="E100")
    users.deactivate(session, "test", person)
    make_course(session, code="SEC-1")
    result = training.import_completions(
        session,
        "test",
        _csv("employee_id,course_code,completed_on", "E100,SEC-1,2026-05-01"),
        today=date(2026, 6, 1),
    )
    assert [str(e) for e in result.errors] == ["line 2: employee_id: unknown person 'E100'"]
    assert not result.written


# Reminders -----------------------------------------------------------------------------------


def _summary(found) -> set:
    return {
        (r.kind, r.recipient.email, tuple((c.code, due) for c, due in r.courses)) for r in found
    }


def test_pending_training_reminders_are_sent_once(session):
    """Due soon, overdue and welcome reminders are pending until recorded as sent; the
    overdue one comes back the following week, the others do not."""
    make_user(session, hired_on=HIRED, email="veteran@example.jp")
    make_user(session, hired_on="2026-04-15", email="newcomer@example.jp")
    done = make_user(session, hired_on=HIRED, email="done@example.jp")
    soon = make_course(session, code="SOON", today=EFFECTIVE, due_soon_days=14)
    late = make_course(session, code="LATE", today=date(2026, 1, 1), due_soon_days=14)
    _complete(session, soon, done, date(2026, 1, 5))
    _complete(session, late, done, date(2026, 1, 5))
    today = date(2026, 4, 20)
    found = reminders.pending_training(session, today)
    assert _summary(found) == {
        ("training_due_soon", "veteran@example.jp", (("SOON", date(2026, 5, 1)),)),
        ("training_overdue", "veteran@example.jp", (("LATE", date(2026, 1, 31)),)),
        (
            "training_welcome",
            "newcomer@example.jp",
            (("SOON", date(2026, 5, 15)), ("LATE", date(2026, 5, 15))),
        ),
    }
    for reminder in found:
        reminders.record_sent(session, reminder, "smtp")
    assert reminders.pending_training(session, today) == []
    assert _summary(reminders.pending_training(session, date(2026, 4, 27))) == {
        ("training_overdue", "veteran@example.jp", (("LATE", date(2026, 1, 31)),)),
    }


def test_welcome_reminder_leaves_out_exempt_courses(session):
    """A newcomer's welcome lists only the courses they must take, not exempt ones."""
    newcomer = make_user(session, hired_on="2026-04-15", email="newcomer@example.jp")
    must = make_course(session, code="MUST", due_soon_days=14)
    exempt = make_course(session, code="EXEMPT", due_soon_days=14)
    training.grant_exemption(session, "test", exempt, newcomer, "前職で受講済み")
    found = reminders.pending_training(session, date(2026, 4, 20))
    assert _summary(found) == {
        ("training_welcome", "newcomer@example.jp", (("MUST", date(2026, 5, 15)),)),
    }
    assert must.id != exempt.id
