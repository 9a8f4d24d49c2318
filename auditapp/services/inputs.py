"""Parsing and bounds for what people type: text, emails, dates, roles.

Messages are lazy translations: shown in the reader's language on a page, in English
on the command line (no request there).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

from auditapp.errors import InvalidInput
from auditapp.i18n import lazy_text as _l
from auditapp.models import Role

EMAIL_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
_JA_DATE = re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日$")
_SLASH_DATE = re.compile(r"^(\d{4})[/-](\d{1,2})[/-](\d{1,2})$")


def fail(field: str, message) -> InvalidInput:
    """An InvalidInput for one field."""
    return InvalidInput(f"{field}: {message}", {field: message})


# Bidirectional overrides and isolates reorder what a reader sees (a name that displays
# differently from what it is); never accepted in anything people type.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def text(
    value: str | None,
    field: str,
    *,
    max_len: int,
    required: bool = True,
    multiline: bool = False,
) -> str | None:
    """Strip a text value and check it is present (if required) and not too long.

    Names, titles and codes are one line: control characters (CR, LF and tab included)
    are refused, as they break mail headers, CSV rows and workbook cells. Only fields
    declared `multiline` (statements, descriptions, comments) keep line breaks and tabs.
    Bidirectional overrides are refused everywhere.
    """
    value = (value or "").strip()
    if not value:
        if required:
            raise fail(field, _l("is required"))
        return None
    allowed = "\r\n\t" if multiline else ""
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value):
        raise fail(
            field,
            _l("contains control characters")
            if multiline
            else _l("must be one line without control characters"),
        )
    if any(ch in BIDI_CONTROLS for ch in value):
        raise fail(field, _l("contains bidirectional control characters"))
    if len(value) > max_len:
        raise fail(
            field, _l("is too long (%(n)s characters, at most %(max)s)", n=len(value), max=max_len)
        )
    return value


def email(value: str | None, field: str = "email") -> str:
    """A well-formed email address, lower-cased (emails are unique case-insensitively)."""
    value = text(value, field, max_len=254) or ""
    if not EMAIL_RE.match(value):
        raise fail(field, _l("%(value)s is not a valid email address", value=repr(value)))
    return value.lower()


def parse_date(value: str | None, field: str, *, required: bool = False) -> date | None:
    """A date typed as 2026-04-01, 2026/04/01 or 2026年4月1日; impossible dates refused."""
    value = unicodedata.normalize("NFKC", (value or "").strip())
    if not value:
        if required:
            raise fail(field, _l("is required"))
        return None
    match = _SLASH_DATE.match(value) or _JA_DATE.match(value)
    if not match:
        raise fail(
            field,
            _l(
                "%(value)s is not a date (use YYYY-MM-DD, YYYY/MM/DD or YYYY年M月D日)",
                value=repr(value),
            ),
        )
    year, month, day = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise fail(
            field,
            _l("%(value)s is not a real date (%(reason)s)", value=repr(value), reason=str(exc)),
        ) from exc


def roles(value: str | list[str] | None, field: str = "roles") -> set[Role]:
    """Roles given as a list or as text separated by ';', ',', '|' or spaces; at least one."""
    items = value if isinstance(value, list) else re.split(r"[;,|\s]+", value or "")
    names = [v.strip().lower() for v in items if v and v.strip()]
    if not names:
        raise fail(field, _l("at least one role is required"))
    known = sorted(r.value for r in Role)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise fail(
            field,
            _l(
                "unknown role %(role)s (known: %(known)s)",
                role=repr(unknown[0]),
                known=", ".join(known),
            ),
        )
    return {Role(n) for n in names}


def language(value: str | None, allowed: list[str], field: str = "language") -> str | None:
    """A UI language code from the allowed list, or None for 'follow the browser'."""
    value = (value or "").strip().lower()
    if not value:
        return None
    if value not in allowed:
        raise fail(
            field,
            _l(
                "unknown language %(value)s (use %(allowed)s)",
                value=repr(value),
                allowed=", ".join(allowed),
            ),
        )
    return value


def page_number(value: str | None) -> int:
    """A 1-based page number from a query string; anything odd means page 1."""
    try:
        return max(1, min(int(value or 1), 1_000_000))
    except ValueError:
        return 1
