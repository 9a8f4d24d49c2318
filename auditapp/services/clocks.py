"""Legal clocks: the deadlines the law fixes, counted on the national calendar only.

Every register with a clock (leak incidents, requests from persons, third-party provision
records, contractor supervision) takes its dates from here, so each rule exists once.

The national calendar is not the organization's: a deadline set by law moves only for
Saturdays, Sundays, national holidays (国民の祝日, including 振替休日 and 国民の休日, from
jpholiday) and the year-end closure of December 29 – January 3 (the 行政機関の休日 the PPC
counts by). Company holidays (お盆, 創立記念日) never move a legal deadline.

Rules (PPC guideline 通則編 3-5-3, 規則 8条; 法 33–39; 規則 19–20条):

- Leak report, preliminary (速報): "promptly" — the guideline's guide is 3–5 days from when
  any part of the business knew. Target: known_on + 3 calendar days; outer bound
  known_on + 5 (both configurable); calendar days, no roll-forward (a guide, not a term).
- Leak report, final (確報): within 30 days, 60 when the leak is (suspected to be) by an
  unauthorized purpose (不正の目的). The day it became known is day 1, so the deadline is
  known_on + 29 (or + 59); when that day is not a national business day the deadline is
  the next one that is. Known 2026-12-01 → 2027-01-04; known 2026-04-06 → 2026-05-07.
- Request from a person (開示等の請求): the person may sue two weeks after the request
  reached us (法 39): two_weeks_end = received_on + 14 calendar days (2026-12-25 →
  2027-01-08). The internal target is received_on + 7 calendar days (configurable).
- Third-party provision records (確認・記録義務): kept for 1 year counted from the last
  provision when the contract serves as the record, 3 years from the last provision for
  bulk records, otherwise 3 years from the record's creation; counted with the first day
  included (起算して), so 1 year from 2026-04-01 ends 2027-03-31.
- Contractor supervision: yearly; the next is due 12 months after the last one (or
  after the assessment before contracting when none has been done yet).
"""

from __future__ import annotations

import calendar
import enum
from dataclasses import dataclass
from datetime import date, timedelta

import jpholiday


def is_national_business_day(day: date) -> bool:
    """Not a Saturday or Sunday, a national holiday, or December 29 – January 3."""
    if day.weekday() >= 5:
        return False
    if (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3):
        return False
    return not jpholiday.is_holiday(day)


def next_national_business_day(day: date) -> date:
    """The day itself when it is a national business day, else the next one that is."""
    while not is_national_business_day(day):
        day += timedelta(days=1)
    return day


def add_months(day: date, months: int) -> date:
    """The same day `months` later; the month's last day when it is shorter (Jan 31 → Feb 28)."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(day.day, last))


def end_of_term(start: date, years: int) -> date:
    """The last day of a term of whole years counted with the first day included."""
    return add_months(start, 12 * years) - timedelta(days=1)


@dataclass(frozen=True)
class ClockSettings:
    """The configurable parts of the clocks (INCIDENT_*, REQUEST_* settings)."""

    preliminary_target_days: int = 3
    preliminary_outer_days: int = 5
    request_target_days: int = 7

    @classmethod
    def from_config(cls, config) -> ClockSettings:
        return cls(
            preliminary_target_days=int(config.get("INCIDENT_PRELIMINARY_TARGET_DAYS", 3)),
            preliminary_outer_days=int(config.get("INCIDENT_PRELIMINARY_OUTER_DAYS", 5)),
            request_target_days=int(config.get("REQUEST_TARGET_DAYS", 7)),
        )


@dataclass(frozen=True)
class IncidentDeadlines:
    """When the PPC reports of a leak incident are due."""

    preliminary_target: date
    preliminary_outer: date
    final_due: date


def incident_deadlines(
    known_on: date, *, malicious: bool, settings: ClockSettings | None = None
) -> IncidentDeadlines:
    """The preliminary (速報) and final (確報) report deadlines of a leak known on a day."""
    settings = settings or ClockSettings()
    days = 60 if malicious else 30
    # The day it became known is day 1.
    last_day = known_on + timedelta(days=days - 1)
    return IncidentDeadlines(
        preliminary_target=known_on + timedelta(days=settings.preliminary_target_days),
        preliminary_outer=known_on + timedelta(days=settings.preliminary_outer_days),
        final_due=next_national_business_day(last_day),
    )


@dataclass(frozen=True)
class RequestDeadlines:
    """When a person's request must be answered: our target and the two-week mark."""

    target_on: date
    two_weeks_end: date


def request_deadlines(received_on: date, settings: ClockSettings | None = None) -> RequestDeadlines:
    """The internal target and the day two weeks after receipt (法 39: the person may sue)."""
    settings = settings or ClockSettings()
    return RequestDeadlines(
        target_on=received_on + timedelta(days=settings.request_target_days),
        two_weeks_end=received_on + timedelta(days=14),
    )


class RecordMethod(enum.StrEnum):
    """How a third-party provision is recorded (規則 19条)."""

    EACH = "each"  # a record per provision
    BULK = "bulk"  # one record for continuous or repeated provision
    CONTRACT = "contract"  # the contract (or other document) serves as the record


def provision_keep_until(
    method: str, *, first_on: date, last_on: date | None, created_on: date
) -> date:
    """The last day a third-party provision record must be kept (規則 20条)."""
    last = last_on or first_on
    if method == RecordMethod.CONTRACT:
        return end_of_term(last, 1)
    if method == RecordMethod.BULK:
        return end_of_term(last, 3)
    if method == RecordMethod.EACH:
        return end_of_term(created_on, 3)
    raise ValueError(f"unknown record method {method!r}; use each, bulk or contract")


def next_supervision_due(last_on: date, months: int = 12) -> date:
    """When a contractor's next supervision is due after the last one (or the assessment)."""
    return add_months(last_on, months)


class ClockState(enum.StrEnum):
    """Where a running clock stands on a day."""

    MET = "met"  # done (on or before the deadline or after it: see met_late)
    RUNNING = "running"
    DUE_TODAY = "due_today"
    OVERDUE = "overdue"


@dataclass(frozen=True)
class Clock:
    """A deadline as seen on a day: its state and the days left (negative when past)."""

    due: date
    state: ClockState
    days_left: int
    met_late: bool = False


def clock(due: date, today: date, done_on: date | None = None) -> Clock:
    """The state of a deadline on a day, given when (if ever) the duty was done."""
    if done_on is not None:
        return Clock(due, ClockState.MET, (due - done_on).days, met_late=done_on > due)
    left = (due - today).days
    if left < 0:
        return Clock(due, ClockState.OVERDUE, left)
    if left == 0:
        return Clock(due, ClockState.DUE_TODAY, 0)
    return Clock(due, ClockState.RUNNING, left)
