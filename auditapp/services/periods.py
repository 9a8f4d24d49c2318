"""Fiscal periods: keys, bounds and due dates for control testing frequencies.

A fiscal year starts on the first day of FISCAL_YEAR_START_MONTH (default 4, April) and is
named by the calendar year in which it starts: with April start, FY2026 runs from
2026-04-01 to 2027-03-31; with January start, FY2026 is calendar year 2026.

Period keys, per frequency:

- monthly: "FY2026-M01" … "FY2026-M12". M01 is the FIRST MONTH OF THE FISCAL YEAR, not
  January: with April start FY2026-M01 is April 2026, M10 is January 2027 and M12 is
  March 2027. Only with January start does Mnn equal the calendar month.
- quarterly: "FY2026-Q1" … "FY2026-Q4" (three fiscal months each, Q1 starting the FY).
- semiannual: "FY2026-H1", "FY2026-H2".
- annual: "FY2026".
- event: "FY2026". Event-driven controls get a standing yearly attestation, so their
  periods are the annual ones, but Period.frequency stays "event" so callers can tell.

A key does not carry the start month: the same key names different dates under a
different FISCAL_YEAR_START_MONTH, so always pass the configured start month.

Due date = period end + GRACE_DAYS (default 14), moved back to the previous business day;
a business day is not a Saturday, Sunday, Japanese public holiday (jpholiday) or day of
the year-end closure (Dec 29 – Jan 3).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import jpholiday

FREQUENCIES = ("monthly", "quarterly", "semiannual", "annual", "event")

DEFAULT_START_MONTH = 4
DEFAULT_GRACE_DAYS = 14

# Length of one period in months; "event" shares the annual period (standing attestation).
_MONTHS_PER_PERIOD = {"monthly": 1, "quarterly": 3, "semiannual": 6, "annual": 12, "event": 12}

# Key suffix letter per sub-annual frequency, and the reverse for parsing.
_SUFFIX = {"monthly": "M", "quarterly": "Q", "semiannual": "H"}
_FREQUENCY_OF_SUFFIX = {letter: freq for freq, letter in _SUFFIX.items()}

# [0-9] rather than \d: \d would accept full-width and other Unicode digits.
_KEY_RE = re.compile(r"FY(?P<year>[0-9]{4})(?:-(?:M(?P<m>[0-9]{2})|(?P<qh>[QH])(?P<n>[0-9])))?")
_FISCAL_YEAR_RE = re.compile(r"(?:FY)?(?P<year>[0-9]{4})")

_KEY_FORMATS = "FY2026, FY2026-H1..H2, FY2026-Q1..Q4 or FY2026-M01..M12"
_INDEX_RANGES = {"monthly": "M01..M12", "quarterly": "Q1..Q4", "semiannual": "H1..H2"}


@dataclass(frozen=True, order=True)
class Period:
    """One period of a frequency: inclusive start and end dates, key and fiscal year."""

    start: date
    end: date  # inclusive: the last day of the period
    key: str
    frequency: str
    fiscal_year: int

    def contains(self, day: date) -> bool:
        """Whether the day falls within the period (both ends inclusive)."""
        return self.start <= day <= self.end


def _check_start_month(start_month: int) -> None:
    """Raise ValueError unless start_month is an integer month 1..12."""
    # bool is an int subclass; True as a month is always a bug, never a choice.
    if (
        not isinstance(start_month, int)
        or isinstance(start_month, bool)
        or not 1 <= start_month <= 12
    ):
        raise ValueError(f"fiscal year start month must be an integer 1..12, got {start_month!r}")


def _check_frequency(frequency: str) -> None:
    """Raise ValueError naming the allowed frequencies unless frequency is one of them."""
    if frequency not in FREQUENCIES:
        allowed = ", ".join(FREQUENCIES)
        raise ValueError(f"unknown frequency {frequency!r}; allowed: {allowed}")


def _month_start(year: int, month: int, months_later: int) -> date:
    """The first day of the month that is months_later months after year-month."""
    index = year * 12 + (month - 1) + months_later
    return date(index // 12, index % 12 + 1, 1)


def _periods_per_year(frequency: str) -> int:
    """How many periods of the frequency make up one fiscal year."""
    return 12 // _MONTHS_PER_PERIOD[frequency]


def _key(fy: int, frequency: str, index: int) -> str:
    """The key of the index-th (1-based) period of the frequency in fiscal year fy."""
    if frequency == "monthly":
        return f"FY{fy:04d}-M{index:02d}"
    if frequency in _SUFFIX:
        return f"FY{fy:04d}-{_SUFFIX[frequency]}{index}"
    return f"FY{fy:04d}"


def _build(fy: int, frequency: str, index: int, start_month: int) -> Period:
    """The index-th (1-based) period of the frequency in fiscal year fy."""
    months = _MONTHS_PER_PERIOD[frequency]
    try:
        start = _month_start(fy, start_month, (index - 1) * months)
        last_month = _month_start(fy, start_month, index * months - 1)
    except ValueError as exc:  # the date type only covers years 1..9999
        raise ValueError(f"fiscal year {fy} is out of range: {exc}") from None
    # The month's own last day, not next month's first minus one: FY9999 may end 9999-12-31.
    end = last_month.replace(day=calendar.monthrange(last_month.year, last_month.month)[1])
    return Period(
        start=start,
        end=end,
        key=_key(fy, frequency, index),
        frequency=frequency,
        fiscal_year=fy,
    )


def fiscal_year_of(day: date, start_month: int = DEFAULT_START_MONTH) -> int:
    """The fiscal year containing the day, named by the calendar year in which it starts."""
    _check_start_month(start_month)
    return day.year if day.month >= start_month else day.year - 1


def fiscal_year_bounds(fy: int, start_month: int = DEFAULT_START_MONTH) -> tuple[date, date]:
    """The first and last (inclusive) day of fiscal year fy."""
    _check_start_month(start_month)
    period = _build(fy, "annual", 1, start_month)
    return period.start, period.end


def period_for(day: date, frequency: str, start_month: int = DEFAULT_START_MONTH) -> Period:
    """The period of the frequency that contains the day."""
    _check_frequency(frequency)
    fy = fiscal_year_of(day, start_month)
    months_into_year = (day.year - fy) * 12 + day.month - start_month
    index = months_into_year // _MONTHS_PER_PERIOD[frequency] + 1
    return _build(fy, frequency, index, start_month)


def periods_in_fiscal_year(
    fy: int, frequency: str, start_month: int = DEFAULT_START_MONTH
) -> list[Period]:
    """All periods of the frequency in fiscal year fy, in date order, tiling the year."""
    _check_start_month(start_month)
    _check_frequency(frequency)
    count = _periods_per_year(frequency)
    return [_build(fy, frequency, index, start_month) for index in range(1, count + 1)]


def next_period(period: Period, start_month: int = DEFAULT_START_MONTH) -> Period:
    """The period of the same frequency that follows, crossing into the next FY after the last."""
    # A period built under another start month would silently skip or repeat months.
    if period_for(period.start, period.frequency, start_month) != period:
        raise ValueError(
            f"{period.key} ({period.start} – {period.end}) is not a {period.frequency} "
            f"period of a fiscal year starting in month {start_month}"
        )
    return period_for(period.end + timedelta(days=1), period.frequency, start_month)


def parse_period_key(key: str, start_month: int = DEFAULT_START_MONTH) -> Period:
    """The period named by a key; a bare "FY2026" gives the annual period (see module doc)."""
    _check_start_month(start_month)
    match = _KEY_RE.fullmatch(key) if isinstance(key, str) else None
    if match is None:
        raise ValueError(f"invalid period key {key!r}; expected {_KEY_FORMATS}")
    fy = int(match["year"])
    if fy < 1:
        raise ValueError(f"invalid period key {key!r}: fiscal year must be 0001 or later")
    if match["m"] is not None:
        frequency, index = "monthly", int(match["m"])
    elif match["qh"] is not None:
        frequency, index = _FREQUENCY_OF_SUFFIX[match["qh"]], int(match["n"])
    else:
        frequency, index = "annual", 1
    if not 1 <= index <= _periods_per_year(frequency):
        raise ValueError(
            f"invalid period key {key!r}: {frequency} periods run {_INDEX_RANGES[frequency]}"
        )
    return _build(fy, frequency, index, start_month)


def period_for_key(key: str, frequency: str, start_month: int = DEFAULT_START_MONTH) -> Period:
    """The period named by a key for a control of the given frequency ("event" included)."""
    _check_frequency(frequency)
    period = parse_period_key(key, start_month)
    # "event" reuses the annual keys; the parsed period only lacks its frequency name.
    expected = "annual" if frequency == "event" else frequency
    if period.frequency != expected:
        raise ValueError(f"period key {key!r} is a {period.frequency} key, not a {frequency} one")
    return replace(period, frequency=frequency)


def is_business_day(day: date) -> bool:
    """Not a weekend, a Japanese public holiday or the year-end closure (Dec 29 – Jan 3)."""
    if day.weekday() >= 5:
        return False
    if (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3):
        return False
    return not jpholiday.is_holiday(day)


def previous_business_day(day: date) -> date:
    """The latest business day on or before the day (the day itself if it is one)."""
    while not is_business_day(day):
        day -= timedelta(days=1)
    return day


def due_date(period: Period, grace_days: int = DEFAULT_GRACE_DAYS) -> date:
    """Period end plus grace days, moved back to the previous business day if needed."""
    if grace_days < 0:
        raise ValueError(f"grace days must not be negative, got {grace_days}")
    # Moving back, not forward, so a due date never drifts past the agreed grace period.
    return previous_business_day(period.end + timedelta(days=grace_days))


def parse_fiscal_year(text: str) -> int:
    """The fiscal year in "FY2026" or "2026" form, as an int; ValueError otherwise."""
    match = _FISCAL_YEAR_RE.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match["year"]) < 1:
        raise ValueError(f"invalid fiscal year {text!r}; expected FY2026 or 2026")
    return int(match["year"])


def today_in(timezone: str) -> date:
    """Today's date in a time zone (the configured TIMEZONE): the one way to ask for today."""
    return datetime.now(ZoneInfo(timezone)).date()
