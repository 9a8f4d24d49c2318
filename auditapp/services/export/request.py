"""What to export: the request (scope, categories, language), parsed and checked."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from auditapp.errors import InvalidInput
from auditapp.i18n import lazy_text as _l
from auditapp.models import Check
from auditapp.services import inputs, periods
from auditapp.services.catalog import CATEGORIES

LANGUAGES = ("ja", "en")
MAX_SCOPE_DAYS = 3660  # ten years: a bound for the typed range (SECURITY.md item 21)
_CATEGORY = {c.id: c for c in CATEGORIES}


@dataclass
class ExportRequest:
    """What to export: an inclusive date range, categories (empty: all) and a language."""

    scope_from: date
    scope_to: date
    categories: list[str] = field(default_factory=list)
    lang: str = "ja"
    timezone: str = "Asia/Tokyo"
    label: str = ""  # how the scope was asked for, e.g. "FY2026"

    @property
    def scope_label(self) -> str:
        """The scope as shown: the fiscal year asked for and the dates it covers."""
        dates = f"{self.scope_from.isoformat()} – {self.scope_to.isoformat()}"
        return f"{self.label} ({dates})" if self.label else dates

    def category_ids(self) -> list[str]:
        """The categories in scope (all of them when none was chosen)."""
        return list(self.categories) or [c.id for c in CATEGORIES]

    def to_dict(self) -> dict:
        return {
            "scope_from": self.scope_from.isoformat(),
            "scope_to": self.scope_to.isoformat(),
            "categories": list(self.categories),
            "lang": self.lang,
            "timezone": self.timezone,
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ExportRequest:
        return cls(
            scope_from=date.fromisoformat(data["scope_from"]),
            scope_to=date.fromisoformat(data["scope_to"]),
            categories=list(data.get("categories") or []),
            lang=data.get("lang", "ja"),
            timezone=data.get("timezone", "Asia/Tokyo"),
            label=data.get("label", ""),
        )


def parse_scope(
    fy: str | None, from_: str | None, to: str | None, start_month: int
) -> tuple[date, date]:
    """The inclusive dates of a fiscal year ("FY2026") or of a typed range; InvalidInput
    naming the field (scope, from, to) when it is missing, malformed or backwards."""
    fy = (fy or "").strip()
    if fy and ((from_ or "").strip() or (to or "").strip()):
        raise inputs.fail("scope", _l("give a fiscal year or a date range, not both"))
    if fy:
        try:
            year = periods.parse_fiscal_year(fy.upper())
            return periods.fiscal_year_bounds(year, start_month)
        except ValueError as exc:
            raise inputs.fail(
                "scope",
                _l("%(value)s is not a fiscal year (use FY2026 or 2026)", value=repr(fy[:20])),
            ) from exc
    if not (from_ or "").strip() and not (to or "").strip():
        raise inputs.fail("scope", _l("choose a fiscal year or a date range"))
    start = inputs.parse_date(from_, "from", required=True)
    end = inputs.parse_date(to, "to", required=True)
    if start > end:
        raise inputs.fail(
            "from",
            _l(
                "%(start)s is after the end date %(end)s",
                start=start.isoformat(),
                end=end.isoformat(),
            ),
        )
    if (end - start).days > MAX_SCOPE_DAYS:
        raise inputs.fail("to", _l("the range is too long (at most ten years)"))
    return start, end


def parse_categories(values: Iterable[str] | None) -> list[str]:
    """Category ids (repeatable or comma-separated), validated; empty means all."""
    chosen: list[str] = []
    for value in values or []:
        for part in re.split(r"[,\s]+", (value or "").strip().lower()):
            if not part:
                continue
            if part not in _CATEGORY:
                raise inputs.fail(
                    "category",
                    _l(
                        "unknown category %(value)s (known: %(known)s)",
                        value=repr(part[:40]),
                        known=", ".join(_CATEGORY),
                    ),
                )
            if part not in chosen:
                chosen.append(part)
    return chosen


def make_request(
    *,
    fy: str | None,
    from_: str | None,
    to: str | None,
    categories: Iterable[str] | None,
    lang: str | None,
    start_month: int,
    timezone: str,
) -> ExportRequest:
    """Check everything an export request says; InvalidInput lists every bad field."""
    errors: dict = {}
    start = end = None
    try:
        start, end = parse_scope(fy, from_, to, start_month)
    except InvalidInput as exc:
        errors.update(exc.errors)
    try:
        chosen = parse_categories(categories)
    except InvalidInput as exc:
        errors.update(exc.errors)
        chosen = []
    lang = (lang or "").strip().lower()
    if lang not in LANGUAGES:
        errors["lang"] = _l("choose ja or en")
    if errors:
        raise InvalidInput.from_errors(errors)
    label = f"FY{periods.parse_fiscal_year(fy.strip().upper())}" if (fy or "").strip() else ""
    return ExportRequest(start, end, chosen, lang, timezone, label)


def fiscal_years(session: Session, today: date, start_month: int) -> list[int]:
    """Fiscal years to offer, newest first: those with checks and the current one."""
    low, high = session.execute(
        select(func.min(Check.fiscal_year), func.max(Check.fiscal_year))
    ).one()
    current = periods.fiscal_year_of(today, start_month)
    high = max(high or current, current)
    low = max(min(low or current, current), high - 30)
    return list(range(high, low - 1, -1))
