"""Checks and findings: lists, a check's page with attestation and review, findings' closure,
and the dashboards."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from auditapp import access
from auditapp.extensions import db
from auditapp.models import FindingStatus, Result, Risk
from auditapp.services import catalog, checks, dashboard, evidence, inputs, periods
from auditapp.services.catalog import CATEGORIES
from auditapp.web.helpers import perform, today

bp = Blueprint("checks", __name__)

STATUSES = ["open", "overdue", "attested", "returned", "accepted"]


def _fy_default() -> int:
    return periods.fiscal_year_of(today(), current_app.config["FISCAL_YEAR_START_MONTH"])


@bp.get("/checks/")
def check_list():
    """Checks by due date: filters for fiscal year, status, category, control and period."""
    args = request.args
    errors: dict = {}
    flt = checks.CheckFilter(
        status=args.get("status", "") if args.get("status") in STATUSES else "",
        category=args.get("category", "")
        if args.get("category") in {c.id for c in CATEGORIES}
        else "",
        control_code=args.get("control", "")[:12],
        period_key=args.get("period", "")[:16],
        owner_id=current_user.id if args.get("mine") == "1" else None,
    )
    fy_text = args.get("fy", "")
    try:
        flt.fiscal_year = periods.parse_fiscal_year(fy_text) if fy_text else None
    except ValueError as exc:
        errors["fy"] = str(exc)
    page = inputs.page_number(args.get("page"))
    size = current_app.config["PAGE_SIZE"]
    rows, total = (
        checks.search(db.session, current_user, flt, today(), page, size) if not errors else ([], 0)
    )
    return render_template(
        "checks/list.html",
        rows=rows,
        total=total,
        page=page,
        page_size=size,
        args=args,
        errors=errors,
        statuses=STATUSES,
        categories=CATEGORIES,
        today=today(),
        fy_default=_fy_default(),
        can_filter_mine=access.may_own_controls(current_user),
    ), (400 if errors else 200)


def _render_check(check, errors=None, form=None, status=200):
    control = check.control
    can_attest = access.may_attest(current_user, check, today())
    target = evidence.resolve(db.session, "check", str(check.id))
    return render_template(
        "checks/check.html",
        check=check,
        control=control,
        content=control.content,
        profile=catalog.profile(db.session).value,
        today=today(),
        evidence_items=evidence.for_object(
            db.session, current_user, "check", str(check.id), today()
        ),
        can_upload=access.may_attach(current_user, target),
        locked=target.locked if access.is_responsible_for(current_user, target) else None,
        can_attest=can_attest,
        can_review=access.may_review(current_user, check),
        figures=checks.figures_for(db.session, control, today()),
        findings=checks.findings_of_check(db.session, check),
        errors=errors or {},
        form=form or {},
        results=[r.value for r in Result],
        risks=[r.value for r in Risk],
    ), status


@bp.get("/checks/<int:check_id>")
def check_detail(check_id: int):
    """A check: what to do (requirement, method, procedure), evidence, attestation, review."""
    return _render_check(checks.get_check(db.session, current_user, check_id))


@bp.post("/checks/<int:check_id>/attest")
def attest(check_id: int):
    """The owner submits the attestation (locked once submitted)."""
    check = checks.get_check(db.session, current_user, check_id)
    form = request.form
    finding = {
        k: form.get(f"finding_{k}", "")
        for k in ("description", "risk", "remediation_plan", "due_date")
    }
    return perform(
        lambda: checks.attest(
            db.session,
            current_user,
            check,
            result=form.get("result", ""),
            statement=form.get("statement"),
            finding=finding,
            today=today(),
        ),
        again=lambda errors, status: _render_check(
            checks.get_check(db.session, current_user, check_id), errors, form.to_dict(), status
        ),
        done=url_for("checks.check_detail", check_id=check_id),
        message=_("Your attestation was submitted."),
    )


@bp.post("/checks/<int:check_id>/review")
def review(check_id: int):
    """An admin (not the attester) accepts the attestation or returns it with a comment."""
    check = checks.get_check(db.session, current_user, check_id)
    return perform(
        lambda: checks.review(
            db.session,
            current_user,
            check,
            decision=request.form.get("decision", ""),
            comment=request.form.get("comment"),
        ),
        again=lambda errors, status: _render_check(
            checks.get_check(db.session, current_user, check_id),
            errors,
            request.form.to_dict(),
            status,
        ),
        done=url_for("checks.check_detail", check_id=check_id),
        message=_("The review was saved."),
    )


@bp.get("/findings/")
def finding_list():
    """Findings, most urgent first; filter by status and risk."""
    args = request.args
    statuses = [s.value for s in FindingStatus] + ["overdue"]
    flt = checks.FindingFilter(
        status=args.get("status", "open")
        if args.get("status", "open") in statuses + [""]
        else "open",
        risk=args.get("risk", "") if args.get("risk") in {r.value for r in Risk} else "",
    )
    page = inputs.page_number(args.get("page"))
    size = current_app.config["PAGE_SIZE"]
    rows, total = checks.search_findings(db.session, current_user, flt, today(), page, size)
    return render_template(
        "checks/findings.html",
        rows=rows,
        total=total,
        page=page,
        page_size=size,
        flt=flt,
        statuses=statuses,
        risks=[r.value for r in Risk],
        today=today(),
    )


def _render_finding(finding, errors=None, status=200):
    target = evidence.resolve(db.session, "finding", str(finding.id))
    return render_template(
        "checks/finding.html",
        finding=finding,
        today=today(),
        errors=errors or {},
        evidence_items=evidence.for_object(
            db.session, current_user, "finding", str(finding.id), today()
        ),
        can_upload=access.may_attach(current_user, target),
        locked=target.locked if access.is_responsible_for(current_user, target) else None,
        can_close=access.may_close_finding(current_user, finding),
        can_review=access.may_review_closure(current_user, finding),
    ), status


@bp.get("/findings/<int:finding_id>")
def finding_detail(finding_id: int):
    """A finding: plan, owner, due date, evidence of the fix, closure and its review."""
    return _render_finding(checks.get_finding(db.session, current_user, finding_id))


@bp.post("/findings/<int:finding_id>/close")
def finding_close(finding_id: int):
    """The owner asks to close the finding (note and evidence required)."""
    finding = checks.get_finding(db.session, current_user, finding_id)
    return perform(
        lambda: checks.submit_closure(
            db.session, current_user, finding, request.form.get("closing_note")
        ),
        again=lambda errors, status: _render_finding(
            checks.get_finding(db.session, current_user, finding_id), errors, status
        ),
        done=url_for("checks.finding_detail", finding_id=finding_id),
        message=_("The closure was submitted for review."),
    )


@bp.post("/findings/<int:finding_id>/review")
def finding_review(finding_id: int):
    """An admin closes the finding or returns it to its owner."""
    finding = checks.get_finding(db.session, current_user, finding_id)
    return perform(
        lambda: checks.review_closure(
            db.session,
            current_user,
            finding,
            decision=request.form.get("decision", ""),
            comment=request.form.get("comment"),
        ),
        again=lambda errors, status: _render_finding(
            checks.get_finding(db.session, current_user, finding_id), errors, status
        ),
        done=url_for("checks.finding_detail", finding_id=finding_id),
        message=_("The review was saved."),
    )


@bp.get("/dashboard", endpoint="dashboard")
def dashboard_page():
    """Status of the fiscal year by category and period, overdue work, open findings."""
    fy_text = request.args.get("fy", "")
    try:
        fy = periods.parse_fiscal_year(fy_text) if fy_text else _fy_default()
    except ValueError:
        fy = _fy_default()
    data = dashboard.checks_overview(
        db.session, fy, today(), current_app.config["FISCAL_YEAR_START_MONTH"]
    )
    return render_template(
        "checks/dashboard.html", data=data, fy=fy, categories=CATEGORIES, today=today()
    )
