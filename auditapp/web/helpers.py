"""Small helpers the blueprints share: today, day boundaries, safe redirects, ids from
query strings, session limits, JSON or page."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from flask import current_app, flash, redirect, request

from auditapp.errors import DomainError, InvalidInput, NotFound
from auditapp.extensions import db
from auditapp.services import inputs, periods, sessions
from auditapp.web.request import MAX_ID

# What browsers strip before parsing a URL (WHATWG URL standard): C0 controls and spaces
# at either end, tab/CR/LF anywhere; any other control character left is refused.
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
_BROWSER_DROPS = re.compile(r"[\t\r\n]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def perform(action: Callable[[], object], *, again: Callable, done: str, message: str):
    """One user action from a form, as one transaction: run the service call; when it
    refuses (a domain error) roll back and answer `again(errors, status)` (the form shown
    again, keeping what was typed); else commit, say `message` and redirect to `done`.
    A NotFound still becomes the 404 page (raised before `again` could show anything)."""
    try:
        action()
    except NotFound:
        raise
    except DomainError as exc:
        db.session.rollback()
        return again(exc.errors or {"_": exc.message}, exc.status)
    db.session.commit()
    flash(message, "success")
    return redirect(done)


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


def date_range(args, errors: dict) -> tuple[datetime | None, datetime | None]:
    """The `from`/`to` query filters (typed dates, `to` inclusive) as the start of the first
    day and of the day after the last, in the configured zone; problems go into `errors`."""
    bounds = []
    for field, next_day in (("from", False), ("to", True)):
        try:
            bounds.append(day_start(args.get(field, ""), field, next_day=next_day))
        except InvalidInput as exc:
            errors.update(exc.errors)
            bounds.append(None)
    return bounds[0], bounds[1]


def local_path(target: str | None) -> str:
    """A redirect target only if it is a path on this site (never another host), else "/".

    Browsers drop C0 controls and spaces at either end of a URL and tab, CR and LF
    anywhere in it, and read a backslash as a slash: "/", tab, "/evil.example" and
    "/", backslash, "evil.example" both lead to another host. So the target is cleaned
    the same way first, then parsed: no scheme, no host, exactly one leading slash, no
    backslash (nor a full-width look-alike of either).
    """
    cleaned = _BROWSER_DROPS.sub("", (target or "").strip(_C0_AND_SPACE))
    if not cleaned or _CONTROL.search(cleaned):
        return "/"
    folded = unicodedata.normalize("NFKC", cleaned)
    if not folded.startswith("/") or folded.startswith("//") or "\\" in folded:
        return "/"
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return "/"
    if parts.scheme or parts.netloc or not parts.path.startswith("/"):
        return "/"
    return cleaned


def id_arg(value: str | None) -> int | None:
    """An id from a query string or form field, or None when it is missing, not a number,
    or larger than any id column holds (the same bound as `<int:...>` in routes)."""
    if not value or len(value) > 10 or not value.isascii() or not value.isdigit():
        return None
    number = int(value)
    return number if number <= MAX_ID else None


def session_limits() -> sessions.Limits:
    """The idle timeout and absolute lifetime of sessions, from the configuration."""
    cfg = current_app.config
    return sessions.Limits.of(cfg["SESSION_IDLE_MINUTES"], cfg["SESSION_ABSOLUTE_HOURS"])


def wants_json() -> bool:
    """API requests get JSON errors instead of pages."""
    return request.path.startswith("/api/")
