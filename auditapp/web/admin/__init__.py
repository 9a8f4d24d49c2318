"""Administration: people (search, create, edit, deactivate, reset) and departments."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from auditapp.errors import Conflict, InvalidInput
from auditapp.extensions import db
from auditapp.models import Role
from auditapp.services import auth, departments, inputs, users
from auditapp.web.helpers import id_arg

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _form_data() -> dict:
    """The user form's fields as the service expects them."""
    form = request.form
    return {
        "employee_id": form.get("employee_id", ""),
        "name": form.get("name", ""),
        "email": form.get("email", ""),
        "department": form.get("department", ""),
        "roles": form.getlist("roles"),
        "hired_on": form.get("hired_on", ""),
        "language": form.get("language", ""),
    }


def _render_user_form(user, data: dict, errors: dict, status: int = 200):
    throttle = auth.Throttle.from_settings(current_app.config)
    return render_template(
        "admin/user_form.html",
        user=user,
        data=data,
        errors=errors,
        failures=auth.recent_failures(db.session, user, throttle) if user else 0,
        failure_window=throttle.window_minutes,
        departments=[d for d, _n in departments.list_all(db.session, include_inactive=False)],
        all_roles=[r.value for r in Role],
    ), status


@bp.get("/users")
def user_list():
    """People, searchable by name, email or employee id, filtered by role, department, status."""
    args = request.args
    page = inputs.page_number(args.get("page"))
    status = args.get("status", "active")
    active = {"active": True, "inactive": False}.get(status)
    dept_id = id_arg(args.get("department"))
    role = args.get("role", "") if args.get("role", "") in {r.value for r in Role} else ""
    size = current_app.config["PAGE_SIZE"]
    rows, total = users.search(
        db.session,
        q=args.get("q", "")[:100],
        role=role,
        department_id=dept_id,
        active=active,
        page=page,
        page_size=size,
    )
    return render_template(
        "admin/users.html",
        users=rows,
        total=total,
        page=page,
        page_size=size,
        departments=[d for d, _n in departments.list_all(db.session)],
        all_roles=[r.value for r in Role],
        status=status,
        role=role,
        department_id=dept_id,
        q=args.get("q", ""),
    )


@bp.route("/users/new", methods=["GET", "POST"])
def user_new():
    """Create a person; the generated first password is shown once."""
    if request.method == "GET":
        return _render_user_form(None, {"roles": ["employee"]}, {})
    data = _form_data()
    try:
        user, password = users.create(db.session, current_user, data)
    except (InvalidInput, Conflict) as exc:
        db.session.rollback()
        return _render_user_form(None, data, exc.errors or {"_": exc.message}, 400)
    db.session.commit()
    return render_template("admin/password_once.html", user=user, password=password)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
def user_edit(user_id: int):
    """Edit a person's details, department and roles."""
    user = users.get(db.session, user_id)
    if request.method == "GET":
        data = users.snapshot(user) | {
            "department": user.department.code if user.department else "",
            "hired_on": user.hired_on.isoformat() if user.hired_on else "",
        }
        return _render_user_form(user, data, {})
    data = _form_data()
    try:
        users.update(db.session, current_user, user, data)
    except (InvalidInput, Conflict) as exc:
        db.session.rollback()
        return _render_user_form(
            users.get(db.session, user_id), data, exc.errors or {"_": exc.message}, 400
        )
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("admin.user_edit", user_id=user_id))


@bp.post("/users/<int:user_id>/deactivate")
def user_deactivate(user_id: int):
    """Deactivate a person: no more sign-ins, current sessions end."""
    users.deactivate(db.session, current_user, users.get(db.session, user_id))
    db.session.commit()
    flash(_("The user was deactivated."), "success")
    return redirect(url_for("admin.user_edit", user_id=user_id))


@bp.post("/users/<int:user_id>/reactivate")
def user_reactivate(user_id: int):
    """Let a deactivated person sign in again."""
    users.reactivate(db.session, current_user, users.get(db.session, user_id))
    db.session.commit()
    flash(_("The user was reactivated."), "success")
    return redirect(url_for("admin.user_edit", user_id=user_id))


@bp.post("/users/<int:user_id>/reset-password")
def user_reset_password(user_id: int):
    """Give a person a new one-time password (shown once) to change at next sign-in."""
    user = users.get(db.session, user_id)
    password = auth.reset_password(db.session, current_user, user)
    db.session.commit()
    return render_template("admin/password_once.html", user=user, password=password)


@bp.post("/users/<int:user_id>/unlock")
def user_unlock(user_id: int):
    """Clear a person's failed sign-ins, from every client, so they can sign in at once."""
    cleared = auth.unlock(db.session, current_user, users.get(db.session, user_id))
    db.session.commit()
    flash(_("%(n)s failed sign-ins were cleared.", n=cleared), "success")
    return redirect(url_for("admin.user_edit", user_id=user_id))


@bp.route("/departments", methods=["GET", "POST"])
def department_list():
    """Departments with member counts; a form to add one."""
    errors: dict = {}
    data: dict = {}
    if request.method == "POST":
        data = {k: request.form.get(k, "") for k in ("code", "name", "name_en")}
        try:
            departments.create(db.session, current_user, data)
        except (InvalidInput, Conflict) as exc:
            db.session.rollback()
            errors = exc.errors or {"_": exc.message}
        else:
            db.session.commit()
            flash(_("Department added."), "success")
            return redirect(url_for("admin.department_list"))
    return render_template(
        "admin/departments.html", rows=departments.list_all(db.session), errors=errors, data=data
    ), (400 if errors else 200)


@bp.route("/departments/<int:dept_id>", methods=["GET", "POST"])
def department_edit(dept_id: int):
    """Rename a department, change its code, or deactivate it."""
    dept = departments.get(db.session, dept_id)
    errors: dict = {}
    data = departments.snapshot(dept)
    if request.method == "POST":
        data = {k: request.form.get(k, "") for k in ("code", "name", "name_en")}
        data["active"] = request.form.get("active") == "1"
        try:
            departments.update(db.session, current_user, dept, data)
        except (InvalidInput, Conflict) as exc:
            db.session.rollback()
            errors = exc.errors or {"_": exc.message}
            dept = departments.get(db.session, dept_id)
        else:
            db.session.commit()
            flash(_("Saved."), "success")
            return redirect(url_for("admin.department_list"))
    return render_template("admin/department_form.html", dept=dept, data=data, errors=errors), (
        400 if errors else 200
    )
