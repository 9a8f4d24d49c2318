"""The legal clocks on the national calendar, checked day by day for 2026–2028."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from auditapp.services import clocks
from auditapp.services.clocks import ClockSettings, ClockState

# The national holidays as published by the Cabinet Office (内閣府「国民の祝日」), written
# out independently of jpholiday so the test checks the library too. 2026-05-06 and
# 2027-03-22 are 振替休日; 2026-09-22 is a 国民の休日 (between two holidays).
HOLIDAYS = {
    2026: [
        "01-01", "01-12", "02-11", "02-23", "03-20", "04-29", "05-03", "05-04", "05-05",
        "05-06", "07-20", "08-11", "09-21", "09-22", "09-23", "10-12", "11-03", "11-23",
    ],
    2027: [
        "01-01", "01-11", "02-11", "02-23", "03-21", "03-22", "04-29", "05-03", "05-04",
        "05-05", "07-19", "08-11", "09-20", "09-23", "10-11", "11-03", "11-23",
    ],
    2028: [
        "01-01", "01-10", "02-11", "02-23", "03-20", "04-29", "05-03", "05-04", "05-05",
        "07-17", "08-11", "09-18", "09-22", "10-09", "11-03", "11-23",
    ],
    # January–February 2029 only: where the deadlines of leaks known late in 2028 fall.
    2029: ["01-01", "01-08", "02-12", "02-23"],
}  # fmt: skip
HOLIDAY_DAYS = {date.fromisoformat(f"{y}-{md}") for y, days in HOLIDAYS.items() for md in days}


def _days(start: date, end: date):
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


ALL_DAYS = list(_days(date(2026, 1, 1), date(2028, 12, 31)))


def _closed(day: date) -> bool:
    assert day < date(2029, 3, 1), "outside the written-out calendar"
    year_end = (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3)
    return day.weekday() >= 5 or day in HOLIDAY_DAYS or year_end


def test_business_days_match_the_published_calendar_every_day_2026_to_2028():
    """Every day of 2026–2028: open exactly when not a weekend, holiday or Dec 29–Jan 3."""
    wrong = [d for d in ALL_DAYS if clocks.is_national_business_day(d) == _closed(d)]
    assert wrong == []


@pytest.mark.parametrize(
    ("day", "why"),
    [
        (date(2026, 5, 6), "振替休日"),
        (date(2027, 3, 22), "振替休日"),
        (date(2026, 9, 22), "国民の休日"),
        (date(2026, 12, 29), "year-end closure"),
        (date(2027, 1, 3), "year-end closure"),
        (date(2028, 1, 1), "元日 on a Saturday"),
    ],
)
def test_special_closed_days(day, why):
    """振替休日, 国民の休日 and the year-end closure are not business days."""
    assert not clocks.is_national_business_day(day), why


@pytest.mark.parametrize(
    ("known_on", "malicious", "final_due"),
    [
        (date(2026, 12, 1), False, date(2027, 1, 4)),  # day 30 = Dec 30 (closure)
        (date(2026, 4, 6), False, date(2026, 5, 7)),  # day 30 = May 5, then May 6 振替休日
        (date(2026, 6, 1), False, date(2026, 6, 30)),  # day 30 = Tue Jun 30
        (date(2026, 8, 23), False, date(2026, 9, 24)),  # Sep 21–23 holidays
        (date(2026, 11, 1), True, date(2027, 1, 4)),  # day 60 = Dec 30
        (date(2027, 2, 21), False, date(2027, 3, 23)),  # day 30 = Mar 22 振替休日
    ],
)
def test_final_report_deadline_examples(known_on, malicious, final_due):
    """The day known is day 1; day 30 (60 when malicious), rolled to the next business day."""
    assert clocks.incident_deadlines(known_on, malicious=malicious).final_due == final_due


@pytest.mark.parametrize("malicious", [False, True])
def test_final_report_deadline_every_day_2026_to_2028(malicious):
    """For every day known: the deadline is the first business day on or after day 30/60."""
    length = 60 if malicious else 30
    for known_on in ALL_DAYS:
        due = clocks.incident_deadlines(known_on, malicious=malicious).final_due
        last = known_on + timedelta(days=length - 1)
        assert due >= last, known_on
        assert not _closed(due), known_on
        assert all(_closed(d) for d in _days(last, due - timedelta(days=1))), known_on


def test_preliminary_report_is_counted_in_calendar_days_and_configurable():
    """速報: known + 3 days as the target, + 5 as the outer bound; weekends count."""
    known = date(2026, 12, 30)
    default = clocks.incident_deadlines(known, malicious=False)
    assert default.preliminary_target == date(2027, 1, 2)
    assert default.preliminary_outer == date(2027, 1, 4)
    custom = clocks.incident_deadlines(
        known,
        malicious=False,
        settings=ClockSettings(preliminary_target_days=2, preliminary_outer_days=4),
    )
    assert (custom.preliminary_target, custom.preliminary_outer) == (
        date(2027, 1, 1),
        date(2027, 1, 3),
    )


def test_request_two_weeks_end_is_calendar_days():
    """Two weeks after receipt, holidays and the year-end closure included."""
    deadlines = clocks.request_deadlines(date(2026, 12, 25))
    assert deadlines.two_weeks_end == date(2027, 1, 8)
    assert deadlines.target_on == date(2027, 1, 1)
    assert clocks.request_deadlines(
        date(2026, 12, 25), ClockSettings(request_target_days=10)
    ).target_on == date(2027, 1, 4)


@pytest.mark.parametrize(
    ("method", "first_on", "last_on", "created_on", "keep_until"),
    [
        ("contract", date(2025, 4, 1), date(2026, 4, 1), date(2025, 4, 1), date(2027, 3, 31)),
        ("bulk", date(2025, 4, 1), date(2026, 4, 1), date(2025, 4, 1), date(2029, 3, 31)),
        ("each", date(2026, 4, 1), None, date(2026, 4, 2), date(2029, 4, 1)),
        ("contract", date(2024, 2, 29), None, date(2024, 2, 29), date(2025, 2, 27)),
    ],
)
def test_provision_records_keep_until(method, first_on, last_on, created_on, keep_until):
    """1 year after the last provision (contract), 3 years (bulk), 3 years from creation."""
    assert (
        clocks.provision_keep_until(
            method, first_on=first_on, last_on=last_on, created_on=created_on
        )
        == keep_until
    )


def test_unknown_record_method_is_refused():
    """A method outside each/bulk/contract is a programming error, named."""
    with pytest.raises(ValueError, match="unknown record method"):
        clocks.provision_keep_until("yearly", first_on=date(2026, 1, 1), last_on=None,
                                    created_on=date(2026, 1, 1))  # fmt: skip


def test_next_supervision_is_twelve_months_later_even_at_month_end():
    """Yearly supervision: the same day a year later (Feb 29 → Feb 28)."""
    assert clocks.next_supervision_due(date(2026, 3, 31)) == date(2027, 3, 31)
    assert clocks.next_supervision_due(date(2024, 2, 29)) == date(2025, 2, 28)


def test_clock_states():
    """A clock runs, is due today, goes overdue, or is met (on time or late)."""
    due = date(2026, 12, 10)
    assert clocks.clock(due, date(2026, 12, 7)).days_left == 3
    assert clocks.clock(due, date(2026, 12, 7)).state == ClockState.RUNNING
    assert clocks.clock(due, due).state == ClockState.DUE_TODAY
    late = clocks.clock(due, date(2026, 12, 12))
    assert (late.state, late.days_left) == (ClockState.OVERDUE, -2)
    met = clocks.clock(due, date(2026, 12, 20), done_on=date(2026, 12, 11))
    assert (met.state, met.met_late) == (ClockState.MET, True)
    assert not clocks.clock(due, date(2026, 12, 20), done_on=due).met_late
