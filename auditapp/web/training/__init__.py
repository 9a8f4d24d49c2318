"""Training: my training, my department's matrix, the organization's roll-up, courses,
and the LMS/HR import."""

from __future__ import annotations

import csv
import io

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user

from auditapp import access, database
from auditapp.errors import Forbidden, InvalidInput, NotFound
from auditapp.extensions import db
from auditapp.models import CourseKind, Role
from auditapp.services import departments, evidence, training, users
from auditapp.services.csvfile import csv_safe
from auditapp.web.helpers import id_arg, today

bp = Blueprint("training", __name__, url_prefix="/training")


def _lang() -> str:
    from flask_babel import get_locale

    return str(get_locale() or "ja")


@bp.get("/")
def mine():
    """My training: what is due, what I completed (with certificates), forms to record."""
    rows = training.status_rows(db.session, today(), training.StatusFilter(user_id=current_user.id))
    courses = {c.id: c for c in training.list_courses(db.session, include_retired=True)}
    return render_template(
        "training/mine.html",
        rows=rows,
        courses=courses,
        history=training.history(db.session, current_user),
        today=today(),
        errors={},
        form={},
    )


@bp.post("/<code>/complete")
def complete(code: str):
    """Record my own completion (with a certificate when required) or my agreement."""
    course = training.get_course(db.session, code)
    file = request.files.get("certificate")
    has_file = file is not None and bool(file.filename)
    try:
        plan = training.plan_completion(
            db.session,
            current_user,
            course,
            current_user,
            completed_on=request.form.get("completed_on")
            or (today().isoformat() if course.kind == CourseKind.ACKNOWLEDGEMENT else ""),
            score=request.form.get("score"),
            agreed=request.form.get("agreed") == "1",
            has_certificate=has_file,
            today=today(),
        )
        if has_file:

            def record(session):
                # Runs after the certificate's bytes are checked and stored, in the
                # transaction that writes the evidence row.
                plan.course = training.get_course(session, code)
                plan.person = current_user._get_current_object()
                row = training.record_completion(session, current_user, plan, source="self")
                return evidence.resolve(session, "completion", str(row.id))

            evidence.store_upload(
                db.session,
                current_app.extensions["evidence_store"],
                current_user,
                evidence.UploadPlan(
                    targets=[],
                    description=course.code,
                    valid_until=None,
                    actor_id=current_user.id,
                    actor_label=current_user.name,
                    record_target=record,
                ),
                file.stream,
                file.filename,
                today=today(),
                retention_years=current_app.config["EVIDENCE_RETENTION_YEARS"],
            )
        else:
            with database.writing():
                training.record_completion(db.session, current_user, plan, source="self")
        db.session.commit()
    except (InvalidInput, Forbidden) as exc:
        db.session.rollback()
        for value in exc.errors.values() or [exc.message]:
            flash(f"{course.code}: {value}", "error")
        return redirect(url_for("training.mine"))
    flash(_("Recorded: %(course)s.", course=course.title(_lang())), "success")
    return redirect(url_for("training.mine"))


def _department_for_view():
    """The manager's own department; admins may choose any."""
    if access.is_admin(current_user) and id_arg(request.args.get("department")):
        return departments.get(db.session, id_arg(request.args.get("department")))
    if current_user.department is None:
        raise NotFound(_("You belong to no department."))
    return current_user.department


@bp.get("/department")
def department():
    """Person × course matrix of a department with status colours; record a group session."""
    dept = _department_for_view()
    rows = training.status_rows(db.session, today(), training.StatusFilter(department_id=dept.id))
    courses = training.list_courses(db.session)
    people: dict = {}
    for row in rows:
        people.setdefault((row.employee_id, row.user_id, row.name), {})[row.course_id] = row
    return render_template(
        "training/department.html",
        dept=dept,
        courses=courses,
        people=people,
        today=today(),
        all_departments=[d for d, _n in departments.list_all(db.session)]
        if access.is_admin(current_user)
        else [],
    )


@bp.post("/department/session")
def group_session():
    """A manager records one training session for several people of their department."""
    course = training.get_course(db.session, request.form.get("course", ""))
    people = [users.get(db.session, int(i)) for i in request.form.getlist("people") if i.isdigit()]
    try:
        rows = training.record_group(
            db.session,
            current_user,
            course,
            people,
            completed_on=request.form.get("completed_on", ""),
            today=today(),
        )
    except (InvalidInput, Forbidden) as exc:
        db.session.rollback()
        for value in exc.errors.values() or [exc.message]:
            flash(str(value), "error")
        return redirect(url_for("training.department"))
    db.session.commit()
    flash(_("Recorded %(n)s completions.", n=len(rows)), "success")
    return redirect(url_for("training.department"))


@bp.post("/department/remind")
def department_remind():
    """A manager reminds everyone of their department who is overdue or due soon (once a day)."""
    from auditapp.mailer import Mailer, MailSettings
    from auditapp.services import reminders

    if current_user.department is None:
        raise NotFound(_("You belong to no department."))
    items = reminders.for_department(db.session, current_user.department_id, today())
    cfg = current_app.config
    sent, failed = reminders.deliver(
        db.session,
        Mailer(MailSettings.from_config(cfg, current_app.instance_path)),
        items,
        default_language=cfg["DEFAULT_LANGUAGE"],
        base_url=cfg["BASE_URL"],
    )
    flash(_("Reminders sent: %(n)s.", n=sent), "success" if not failed else "error")
    if failed:
        flash(_("%(n)s reminders could not be sent; try again later.", n=len(failed)), "error")
    return redirect(url_for("training.department"))


@bp.get("/organization")
def organization():
    """Completion % per department and course, the overdue list, a CSV download."""
    cells = training.rollup_table(db.session, today())
    courses = training.list_courses(db.session)
    depts = [d for d, _n in departments.list_all(db.session)]
    # The roll-up already counts the overdue; the list shows the first 200 of them.
    overdue = training.status_rows(
        db.session, today(), training.StatusFilter(status="overdue"), limit=200
    )
    overdue_total = sum(cell["overdue"] for cell in cells.values())
    return render_template(
        "training/organization.html",
        cells=cells,
        courses=courses,
        depts=depts,
        overdue=overdue,
        overdue_total=overdue_total,
        course_map={c.id: c for c in courses},
        dept_map={d.id: d for d in depts},
    )


@bp.get("/organization.csv")
def organization_csv():
    """The person × course status as CSV (cells that could run as formulas are quoted)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in training.iter_status_csv(db.session, today(), training.StatusFilter(), _lang()):
        writer.writerow([csv_safe(str(v)) for v in row])
    return Response(
        "\ufeff" + buffer.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=training-status.csv"},
    )


def _course_form() -> dict:
    form = request.form
    data = {
        k: form.get(k, "")
        for k in (
            *training.COURSE_TEXT_FIELDS,
            "ack_text",
            *training.COURSE_NUMBER_FIELDS,
            "pass_mark",
            "control_codes",
            "audience",
        )
    }
    data["certificate_required"] = form.get("certificate_required") == "1"
    data["score_required"] = form.get("score_required") == "1"
    data["departments"] = form.getlist("departments")
    data["roles"] = form.getlist("roles")
    return data


def _render_course(course, data, errors, status=200):
    return render_template(
        "training/course_form.html",
        course=course,
        data=data,
        errors=errors,
        all_departments=[d for d, _n in departments.list_all(db.session, include_inactive=False)],
        all_roles=[r.value for r in Role],
    ), status


@bp.get("/courses")
def course_list():
    """Courses with their audience and recurrence; retired ones on request."""
    return render_template(
        "training/courses.html",
        courses=training.list_courses(
            db.session, include_retired=request.args.get("retired") == "1"
        ),
    )


@bp.route("/courses/new", methods=["GET", "POST"])
def course_new():
    """Create a course."""
    if request.method == "GET":
        return _render_course(
            None,
            {
                "kind": "training",
                "recurrence_months": 12,
                "new_hire_grace_days": 30,
                "due_soon_days": 30,
                "audience": "all",
            },
            {},
        )
    data = _course_form()
    try:
        course = training.create_course(db.session, current_user, data, today())
    except InvalidInput as exc:
        db.session.rollback()
        return _render_course(None, data, exc.errors, 400)
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("training.course_edit", code=course.code))


@bp.route("/courses/<code>", methods=["GET", "POST"])
def course_edit(code: str):
    """Edit a course; grant exemptions; retire it."""
    course = training.get_course(db.session, code)
    if request.method == "GET":
        data = training.snapshot(course) | {
            "audience": "all" if course.audience_all else "some",
            "departments": [str(d) for d in training.snapshot(course)["departments"]],
        }
        return _render_course(course, data, {})
    data = _course_form()
    try:
        training.update_course(db.session, current_user, course, data)
    except InvalidInput as exc:
        db.session.rollback()
        return _render_course(training.get_course(db.session, code), data, exc.errors, 400)
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("training.course_edit", code=course.code))


@bp.post("/courses/<code>/retire")
def course_retire(code: str):
    """Retire a course (or bring it back)."""
    course = training.get_course(db.session, code)
    training.set_active(db.session, current_user, course, request.form.get("active") == "1")
    db.session.commit()
    return redirect(url_for("training.course_edit", code=course.code))


@bp.post("/courses/<code>/exempt")
def course_exempt(code: str):
    """Exempt a person from a course, with a reason."""
    course = training.get_course(db.session, code)
    try:
        person = users.by_email(db.session, request.form.get("email", ""))
        training.grant_exemption(
            db.session, current_user, course, person, request.form.get("reason")
        )
    except (InvalidInput, NotFound) as exc:
        db.session.rollback()
        for value in exc.errors.values() or [exc.message]:
            flash(str(value), "error")
        return redirect(url_for("training.course_edit", code=code))
    db.session.commit()
    flash(_("Exemption recorded."), "success")
    return redirect(url_for("training.course_edit", code=code))


@bp.route("/import", methods=["GET", "POST"])
def completion_import():
    """Import completions from an LMS or HR CSV; every row checked before anything is written."""
    result = None
    if request.method == "POST":
        file = request.files.get("file")
        if file is None or not file.filename:
            flash(_("choose a file to upload"), "error")
            return redirect(url_for("training.completion_import"))
        file.stream.seek(0)
        result = training.import_completions(
            db.session,
            current_user,
            file.stream,
            today=today(),
            encoding=request.form.get("encoding", "utf-8")
            if request.form.get("encoding") in {"utf-8", "cp932"}
            else "utf-8",
            skip_invalid=request.form.get("skip_invalid") == "1",
        )
        if result.written:
            db.session.commit()
        else:
            db.session.rollback()
    return render_template("training/import.html", result=result), (
        400 if result is not None and not result.written else 200
    )
