"""Training and pledges: courses, completions, exemptions, and the figures checks show.

Where people stand (who must take what, the status table) is in `status`; the LMS/HR
completion import in `completion_import`. Their public names are re-exported here, so
callers say `training.status_rows(...)` and `training.import_completions(...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auditapp import access
from auditapp.errors import Forbidden, InvalidInput, NotFound
from auditapp.i18n import lazy_text as _l
from auditapp.models import (
    Completion,
    Course,
    CourseDepartment,
    CourseKind,
    CourseRole,
    Department,
    Exemption,
    Role,
    TrainingStatus,
    User,
)
from auditapp.models.types import utcnow
from auditapp.services import audit, inputs

# Re-exported (`name as name`): callers use them as training.<name>.
from auditapp.services.training.completion_import import IMPORT_OPTIONAL as IMPORT_OPTIONAL
from auditapp.services.training.completion_import import IMPORT_REQUIRED as IMPORT_REQUIRED
from auditapp.services.training.completion_import import ImportResult as ImportResult
from auditapp.services.training.completion_import import import_completions as import_completions
from auditapp.services.training.status import StatusFilter as StatusFilter
from auditapp.services.training.status import add_months as add_months
from auditapp.services.training.status import iter_status_csv as iter_status_csv
from auditapp.services.training.status import must_take_condition as must_take_condition
from auditapp.services.training.status import rollup as rollup
from auditapp.services.training.status import rollup_table as rollup_table
from auditapp.services.training.status import status_rows as status_rows
from auditapp.services.training.status import status_select as status_select

MAX_TEXT = 4000


# Courses ------------------------------------------------------------------------------


_COURSE_TEXTS = {
    "code": lambda v: inputs.text(v, "code", max_len=40),
    "title_ja": lambda v: inputs.text(v, "title_ja", max_len=200),
    "title_en": lambda v: inputs.text(v, "title_en", max_len=200),
    "description": lambda v: inputs.text(
        v, "description", max_len=MAX_TEXT, required=False, multiline=True
    ),
    "content_url": lambda v: inputs.text(v, "content_url", max_len=500, required=False),
    "ack_text": lambda v: inputs.text(
        v, "ack_text", max_len=MAX_TEXT, required=False, multiline=True
    ),
    "control_codes": lambda v: inputs.text(v, "control_codes", max_len=200, required=False),
}
# (field, lowest, highest, default) of a course's whole-number settings.
_COURSE_NUMBERS = (
    ("recurrence_months", 0, 120, 12),
    ("new_hire_grace_days", 0, 365, 30),
    ("due_soon_days", 0, 365, 30),
)


def _course_values(session: Session, data: dict, current: Course | None) -> dict:
    """A course form's checked values; raises InvalidInput naming every bad field."""
    errors: dict = {}
    values: dict = {}
    _course_texts(data, values, errors)
    _course_numbers(data, values, errors)
    if "code" in values:
        other = session.scalar(
            select(Course).where(func.lower(Course.code) == values["code"].lower())
        )
        if other is not None and other is not current:
            errors["code"] = _l("is already used")
    _course_audience(session, data, values, errors)
    if errors:
        raise InvalidInput.from_errors(errors)
    return values


def _course_texts(data: dict, values: dict, errors: dict) -> None:
    """The texts, the content address and the kind (a pledge needs its text)."""
    for name, check in _COURSE_TEXTS.items():
        try:
            values[name] = check(data.get(name))
        except InvalidInput as exc:
            errors.update(exc.errors)
    url = values.get("content_url")
    if url and not url.startswith(("https://", "http://", "/")):
        errors["content_url"] = _l("use a web address starting with https://")
    kind = (data.get("kind") or "training").strip()
    if kind not in {k.value for k in CourseKind}:
        errors["kind"] = _l("choose training or acknowledgement")
    values["kind"] = kind
    if kind == CourseKind.ACKNOWLEDGEMENT and not values.get("ack_text"):
        errors["ack_text"] = _l("an acknowledgement needs the text people agree to")


def _course_numbers(data: dict, values: dict, errors: dict) -> None:
    """Recurrence, grace and due-soon days, and the score settings (a pass mark needs one)."""
    for name, low, high, default in _COURSE_NUMBERS:
        raw = str(data.get(name, default)).strip()
        try:
            number = int(raw)
            if not low <= number <= high:
                raise ValueError
            values[name] = number
        except ValueError:
            errors[name] = _l("a whole number from %(low)s to %(high)s", low=low, high=high)
    values["certificate_required"] = bool(data.get("certificate_required"))
    values["score_required"] = bool(data.get("score_required"))
    pass_mark = str(data.get("pass_mark") or "").strip()
    values["pass_mark"] = None
    if pass_mark:
        try:
            values["pass_mark"] = int(pass_mark)
            if not 0 <= values["pass_mark"] <= 100:
                raise ValueError
        except ValueError:
            errors["pass_mark"] = _l("a whole number from %(low)s to %(high)s", low=0, high=100)
    if values["pass_mark"] is not None and not values["score_required"]:
        errors["pass_mark"] = _l("a pass mark needs a recorded score")


def _course_audience(session: Session, data: dict, values: dict, errors: dict) -> None:
    """Everyone, or the chosen departments and roles (at least one of them)."""
    audience = data.get("audience") or "all"
    values["audience_all"] = audience == "all"
    departments = sorted({int(d) for d in data.get("departments") or [] if str(d).isdigit()})
    known = set(session.scalars(select(Department.id).where(Department.id.in_(departments))))
    if set(departments) - known:
        errors["departments"] = _l("unknown department")
    roles = [r for r in data.get("roles") or [] if r in {x.value for x in Role}]
    if audience != "all" and not departments and not roles:
        errors["audience"] = _l("choose departments or roles, or everyone")
    values["departments"] = departments
    values["roles"] = roles


# The fields a course form carries as typed text (the form and the audit snapshot share them).
COURSE_TEXT_FIELDS = ("code", "title_ja", "title_en", "kind", "description", "content_url")
COURSE_NUMBER_FIELDS = ("recurrence_months", "new_hire_grace_days", "due_soon_days")


def snapshot(course: Course) -> dict:
    """The audited fields of a course."""
    return {
        c: getattr(course, c)
        for c in (
            *COURSE_TEXT_FIELDS,
            "ack_text",
            "audience_all",
            *COURSE_NUMBER_FIELDS,
            "certificate_required",
            "score_required",
            "pass_mark",
            "control_codes",
            "active",
            "effective_from",
        )
    } | {
        "departments": sorted(r.department_id for r in course.department_rows),
        "roles": sorted(r.role for r in course.role_rows),
    }


def _apply(course: Course, values: dict) -> None:
    for key, value in values.items():
        if key not in ("departments", "roles"):
            setattr(course, key, value)
    course.department_rows = [CourseDepartment(department_id=d) for d in values["departments"]]
    course.role_rows = [CourseRole(role=r) for r in values["roles"]]


def create_course(session: Session, actor, data: dict, today: date) -> Course:
    """Create a course; people already employed are due `new_hire_grace_days` from today."""
    values = _course_values(session, data, None)
    course = Course(effective_from=today, active=True)
    _apply(course, values)
    session.add(course)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="course.create",
        object_type="course",
        object_id=course.code,
        after=snapshot(course),
    )
    return course


def update_course(session: Session, actor, course: Course, data: dict) -> Course:
    """Change a course; completions' validity follows a changed recurrence."""
    before = snapshot(course)
    values = _course_values(session, data, course)
    recurrence_changed = values["recurrence_months"] != course.recurrence_months
    _apply(course, values)
    if recurrence_changed:
        for row in session.scalars(select(Completion).where(Completion.course_id == course.id)):
            row.valid_until = (
                add_months(row.completed_on, course.recurrence_months)
                if course.recurrence_months
                else None
            )
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="course.update",
        object_type="course",
        object_id=course.code,
        before=before,
        after=snapshot(course),
    )
    return course


def set_active(session: Session, actor, course: Course, active: bool) -> Course:
    """Retire a course (nobody is due any more; history stays) or bring it back."""
    if course.active != active:
        course.active = active
        audit.record(
            session,
            actor=actor,
            action="course.retire" if not active else "course.restore",
            object_type="course",
            object_id=course.code,
        )
    return course


def get_course(session: Session, code: str) -> Course:
    """A course by code (case-insensitive), or NotFound."""
    course = session.scalar(
        select(Course).where(func.lower(Course.code) == (code or "").strip().lower())
    )
    if course is None:
        raise NotFound(_l("No such course."))
    return course


def list_courses(session: Session, *, include_retired: bool = False) -> list[Course]:
    """Courses by code."""
    stmt = select(Course).order_by(Course.code)
    if not include_retired:
        stmt = stmt.where(Course.active.is_(True))
    return list(session.scalars(stmt))


# Completions ----------------------------------------------------------------------------


@dataclass
class CompletionPlan:
    """A checked completion, ready to be written."""

    course: Course
    person: User
    completed_on: date
    score: int | None
    passed: bool
    agreed: bool


def plan_completion(
    session: Session,
    actor,
    course: Course,
    person: User,
    *,
    completed_on: str | date | None,
    score: str | int | None,
    agreed: bool,
    has_certificate: bool,
    today: date,
) -> CompletionPlan:
    """Check a completion: who may record it, the date (not in the future, not before
    hiring), the score (0–100, required when the course records one), the certificate
    and, for a pledge, the explicit agreement."""
    if not access.may_record_training_for(actor, person):
        raise Forbidden(_l("You may record completions only for yourself or your department."))
    if not course.active:
        raise InvalidInput(_l("This course is retired."), {"course": _l("is retired")})
    errors: dict = {}
    day = completed_on if isinstance(completed_on, date) else None
    if day is None:
        try:
            day = inputs.parse_date(completed_on, "completed_on", required=True)
        except InvalidInput as exc:
            errors.update(exc.errors)
    if day is not None and day > today:
        errors["completed_on"] = _l("must not be in the future")
    elif day is not None and person.hired_on and day < person.hired_on:
        errors["completed_on"] = _l(
            "is before the person was hired (%(day)s)", day=person.hired_on.isoformat()
        )
    value = None
    raw = str(score).strip() if score is not None else ""
    if raw:
        try:
            value = int(raw)
            if not 0 <= value <= 100:
                raise ValueError
        except ValueError:
            errors["score"] = _l("a whole number from %(low)s to %(high)s", low=0, high=100)
    elif course.score_required:
        errors["score"] = _l("is required for this course")
    if course.certificate_required and not has_certificate:
        errors["certificate"] = _l("this course needs a certificate file")
    if course.kind == CourseKind.ACKNOWLEDGEMENT and not agreed:
        errors["agreed"] = _l("tick the box to agree")
    if errors:
        raise InvalidInput.from_errors(errors)
    passed = value is None or course.pass_mark is None or value >= course.pass_mark
    return CompletionPlan(course, person, day, value, passed, agreed)


def record_completion(session: Session, actor, plan: CompletionPlan, *, source: str) -> Completion:
    """Write a completion. Re-recording the same day changes nothing, except that a passing
    retake replaces a failed attempt of that day (recorded in the audit trail)."""
    existing = session.scalar(
        select(Completion).where(
            Completion.course_id == plan.course.id,
            Completion.user_id == plan.person.id,
            Completion.completed_on == plan.completed_on,
        )
    )
    if existing is not None:
        if existing.passed or not plan.passed:
            return existing
        before = {"score": existing.score, "passed": existing.passed}
        existing.score, existing.passed = plan.score, True
        existing.recorded_by_id = access.person_id(actor)
        existing.recorded_by_label = audit.actor_label(actor)[:300]
        existing.recorded_at = utcnow()
        audit.record(
            session,
            actor=actor,
            action="training.retake",
            object_type="completion",
            object_id=existing.id,
            before=before,
            after={"score": plan.score, "passed": True},
        )
        return existing
    row = Completion(
        course_id=plan.course.id,
        user_id=plan.person.id,
        completed_on=plan.completed_on,
        score=plan.score,
        passed=plan.passed,
        valid_until=(
            add_months(plan.completed_on, plan.course.recurrence_months)
            if plan.course.recurrence_months
            else None
        ),
        source=source,
        recorded_by_id=access.person_id(actor),
        recorded_by_label=audit.actor_label(actor)[:300],
        recorded_at=utcnow(),
        agreed_at=utcnow() if plan.agreed else None,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="training.complete",
        object_type="completion",
        object_id=row.id,
        after={
            "course": plan.course.code,
            "person": plan.person.employee_id,
            "completed_on": plan.completed_on,
            "score": plan.score,
            "passed": plan.passed,
            "source": source,
            "agreed": plan.agreed,
        },
    )
    return row


def record_group(
    session: Session,
    actor: User,
    course: Course,
    people: list[User],
    *,
    completed_on: str,
    today: date,
) -> list[Completion]:
    """A manager records one session for several people of their department."""
    if not people:
        raise inputs.fail("people", _l("choose at least one person"))
    rows = []
    for person in people:
        plan = plan_completion(
            session,
            actor,
            course,
            person,
            completed_on=completed_on,
            score=None,
            agreed=False,
            has_certificate=True,
            today=today,
        )
        rows.append(record_completion(session, actor, plan, source="manager"))
    return rows


def history(session: Session, person: User) -> list[Completion]:
    """A person's completions, newest first."""
    return list(
        session.scalars(
            select(Completion)
            .where(Completion.user_id == person.id)
            .order_by(Completion.completed_on.desc(), Completion.id.desc())
        )
    )


def grant_exemption(
    session: Session, actor, course: Course, person: User, reason: str | None
) -> Exemption:
    """Exempt a person from a course with a reason (recorded with who granted it); never
    oneself (four eyes)."""
    if not access.may_grant_exemption(actor, person):
        raise Forbidden(_l("You cannot exempt yourself; ask another administrator."))
    text = inputs.text(reason, "reason", max_len=MAX_TEXT, multiline=True)
    row = session.scalar(
        select(Exemption).where(Exemption.course_id == course.id, Exemption.user_id == person.id)
    )
    if row is None:
        row = Exemption(course_id=course.id, user_id=person.id)
        session.add(row)
    row.reason = text
    row.granted_by_id = access.person_id(actor)
    row.granted_by_label = audit.actor_label(actor)[:300]
    row.granted_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="training.exempt",
        object_type="course",
        object_id=course.code,
        after={"person": person.employee_id, "reason": text},
    )
    return row


def figures_for_control(session: Session, control, today: date) -> dict | None:
    """For controls a course names (e.g. HUM-01): the live completion rate and who is
    overdue, shown on the check page and recorded with the attestation."""
    courses = [c for c in list_courses(session) if control.code in c.controls]
    if not courses:
        return None
    figures: dict = {}
    for course in courses:
        rows = status_rows(session, today, StatusFilter(course_id=course.id))
        counted = [r for r in rows if r.status != TrainingStatus.EXEMPT]
        done = sum(r.valid_now for r in counted)
        overdue = [r.name for r in counted if r.status == TrainingStatus.OVERDUE]
        rate = round(100 * done / len(counted), 1) if counted else 100.0
        figures[f"{course.code} completion %"] = rate
        figures[f"{course.code} overdue people"] = ", ".join(overdue[:50]) or "0"
    return figures
