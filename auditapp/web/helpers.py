"""Small helpers the blueprints share: today, day boundaries, safe redirects, JSON or page."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app, request

from auditapp.services import inputs, periods


def today() -> date:
    """Today's date in the configured zone."""
    return periods.today_in(current_app.config["TIMEZONE"])


def day_start(value: str, field: str, *, next_day: bool = False) -> datetime | None:
    """A typed date as the start of that day (or the next) in the configured zone."""
    day = inputs.parse_date(value, field)
    if day is None:
        return None
    if next_day:
        day += timedelta(days=1)
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))


def local_path(target: str | None) -> str:
    """A redirect target only if it is a path on this site (never another host)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    return target


def wants_json() -> bool:
    """API requests get JSON errors instead of pages."""
    return request.path.startswith("/api/")
