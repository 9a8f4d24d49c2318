"""Browsing the audit trail (admins and auditors)."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from auditapp.extensions import db
from auditapp.services import audit, inputs
from auditapp.web.helpers import date_range

bp = Blueprint("audit", __name__, url_prefix="/audit")


@bp.get("/events")
def event_list():
    """The audit trail, newest first, filtered by period, actor, object and action, paged."""
    args = request.args
    errors: dict = {}
    flt = audit.EventFilter(
        actor=args.get("actor", "")[:100] or None,
        object_type=args.get("object_type", "")[:40] or None,
        object_id=args.get("object_id", "")[:80] or None,
        action=args.get("action", "")[:60] or None,
    )
    flt.since, flt.until = date_range(args, errors)
    page = inputs.page_number(args.get("page"))
    size = current_app.config["PAGE_SIZE"]
    rows, total = audit.search(db.session, flt, page, size) if not errors else ([], 0)
    types, actions = audit.distinct_values(db.session)
    return render_template(
        "audit/events.html",
        rows=rows,
        total=total,
        page=page,
        page_size=size,
        errors=errors,
        args=args,
        types=types,
        actions=actions,
    ), (400 if errors else 200)
