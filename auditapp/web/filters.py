"""Template helpers: dates in the configured zone, paging, navigation by role."""

from __future__ import annotations

import math
from datetime import date, datetime

from flask import Flask, request, url_for
from flask_babel import format_date, format_datetime, get_locale
from flask_login import current_user

from auditapp import access
from auditapp.access import RULES, allowed
from auditapp.i18n import lazy_text as _l
from auditapp.web.helpers import today

# (endpoint, label) in menu order; shown when the user may use the endpoint.
NAV = [
    ("main.index", _l("Home")),
    ("checks.dashboard", _l("Dashboard")),
    ("catalog.control_list", _l("Controls")),
    ("checks.check_list", _l("Checks")),
    ("checks.finding_list", _l("Findings")),
    ("evidence.evidence_list", _l("Evidence")),
    ("training.mine", _l("My training")),
    ("training.department", _l("Department training")),
    ("training.organization", _l("Training")),
    ("training.course_list", _l("Courses")),
    ("exports.export_list", _l("Export")),
    ("admin.user_list", _l("Users")),
    ("admin.department_list", _l("Departments")),
    ("audit.event_list", _l("Audit trail")),
]


def _datetime(value: datetime | None) -> str:
    return format_datetime(value, "yyyy-MM-dd HH:mm") if value else ""


def _date(value: date | None) -> str:
    return format_date(value, "yyyy-MM-dd") if value else ""


class Pager:
    """Numbers for a paged list: which page, how many, links to neighbours."""

    def __init__(self, page: int, page_size: int, total: int):
        self.page = page
        self.page_size = page_size
        self.total = total
        self.pages = max(1, math.ceil(total / page_size))
        self.first = 0 if total == 0 else (page - 1) * page_size + 1
        self.last = min(total, page * page_size)

    def url(self, page: int) -> str:
        """This page's URL with the same filters and another page number."""
        args = request.args.to_dict() | {"page": page}
        return url_for(request.endpoint, **(request.view_args or {}), **args)


def nav_items() -> list[tuple[str, str]]:
    """The menu entries this user may use."""
    user = current_user if current_user.is_authenticated else None
    return [(ep, label) for ep, label in NAV if allowed(user, RULES[ep])]


def init_app(app: Flask) -> None:
    """Register filters and globals for templates."""
    app.jinja_env.filters["dt"] = _datetime
    app.jinja_env.filters["d"] = _date
    app.jinja_env.globals.update(
        access=access,
        nav_items=nav_items,
        current_locale=lambda: str(get_locale() or "ja"),
        Pager=Pager,
        today_date=today,
    )
