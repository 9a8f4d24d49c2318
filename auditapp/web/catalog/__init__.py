"""The control catalog: browse by category, search, a control's page, the admin's settings."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from auditapp import access
from auditapp.errors import InvalidInput
from auditapp.extensions import db
from auditapp.services import catalog, checks, evidence
from auditapp.services.catalog import CATEGORIES, FREQUENCIES
from auditapp.web.helpers import today

bp = Blueprint("catalog", __name__, url_prefix="/catalog")


@bp.get("/")
def control_list():
    """Controls by category in policy order with counts; search over ja and en text."""
    args = request.args
    category = args.get("category", "")
    flt = catalog.ControlFilter(
        q=args.get("q", "")[:100],
        category=category if category in {c.id for c in CATEGORIES} else "",
        unowned=args.get("unowned") == "1",
        applicability=args.get("applicability", "")
        if args.get("applicability") in {"applicable", "na"}
        else "",
        include_retired=args.get("retired") == "1",
    )
    controls = catalog.search(db.session, flt)
    grouped = [(c, [x for x in controls if x.category == c.id]) for c in CATEGORIES]
    return render_template(
        "catalog/index.html",
        grouped=[g for g in grouped if g[1]],
        flt=flt,
        counts=catalog.category_counts(db.session),
        categories=CATEGORIES,
        total=len(controls),
        profile=catalog.profile(db.session).value,
        catalog_version=catalog.get_setting(db.session, catalog.CATALOG_VERSION_KEY) or "",
    )


def _render_control(control, errors: dict | None = None, form: dict | None = None, status=200):
    return render_template(
        "catalog/control.html",
        control=control,
        content=control.content,
        profile=catalog.profile(db.session).value,
        categories={c.id: c for c in CATEGORIES},
        versions=catalog.versions(db.session, control),
        managers=catalog.managers(db.session),
        frequencies=FREQUENCIES,
        errors=errors or {},
        form=form,
        can_edit=access.may_edit_catalog(current_user),
        check_history=checks.history_for_control(db.session, control),
        evidence_items=evidence.for_object(
            db.session, current_user, "control", control.code, today()
        ),
        can_upload=control.active
        and access.may_attach(current_user, evidence.resolve(db.session, "control", control.code)),
    ), status


@bp.get("/controls/<code>")
def control_detail(code: str):
    """A control: requirement, method for the profile, references, procedure, evidence, owner."""
    return _render_control(catalog.get(db.session, code))


@bp.post("/controls/<code>/settings")
def control_settings(code: str):
    """Admin: set the owner, a frequency override and applicability with its justification."""
    control = catalog.get(db.session, code)
    form = {
        "owner": request.form.get("owner", "")[:254],
        "frequency_override": request.form.get("frequency_override", "")[:20],
        "applicable": request.form.get("applicable", "1") == "1",
        "na_justification": request.form.get("na_justification", ""),
    }
    try:
        catalog.update_settings(
            db.session,
            current_user,
            control,
            owner_email=form["owner"],
            frequency_override=form["frequency_override"],
            applicable=form["applicable"],
            justification=form["na_justification"],
        )
    except InvalidInput as exc:
        db.session.rollback()
        return _render_control(catalog.get(db.session, code), exc.errors, form, 400)
    db.session.commit()
    flash(_("Saved."), "success")
    return redirect(url_for("catalog.control_detail", code=control.code))


@bp.post("/profile")
def set_profile():
    """Admin: choose the organization's profile (standard or SME methods)."""
    catalog.set_profile(db.session, current_user, request.form.get("profile", ""))
    db.session.commit()
    flash(_("The organization profile was changed."), "success")
    return redirect(url_for("catalog.control_list"))
