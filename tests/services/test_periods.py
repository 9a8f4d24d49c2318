"""Fiscal periods: bounds, keys, tiling, leap years, business days and due dates."""

from __future__ import annotations

import calendar
from dataclasses import replace
from datetime import date, timedelta
from itertools import pairwise

import jpholiday
import pytest

from auditapp.services.periods import (
    FREQUENCIES,
    Period,
    due_date,
    fiscal_year_bounds,
    fiscal_year_of,
    is_business_day,
    next_period,
    parse_fiscal_year,
    parse_period_key,
    period_for,
    period_for_key,
    periods_in_fiscal_year,
    previous_business_day,
)

ALL_START_MONTHS = range(1, 13)
PERIODS_PER_YEAR = {"monthly": 12, "quarterly": 4, "semiannual": 2, "annual": 1, "event": 1}
# Spans a common year, leap years (2024, 2028), a leap century (2000) and a non-leap one (2100).
ROUND_TRIP_YEARS = (1999, 2000, 2024, 2026, 2027, 2028, 2099, 2100)


def d(text: str) -> date:
    """Parse an ISO date, to keep the tables short."""
    return date.fromisoformat(text)


def days(first: date, last: date):
    """Every day from first to last inclusive."""
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def is_closure(day: date) -> bool:
    """Whether the day falls in the year-end closure, Dec 29 - Jan 3."""
    return (day.month, day.day) >= (12, 29) or (day.month, day.day) <= (1, 3)


# --- fiscal years ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fy", "start_month", "first", "last"),
    [
        (2026, 4, "2026-04-01", "2027-03-31"),
        (2025, 4, "2025-04-01", "2026-03-31"),
        (2027, 4, "2027-04-01", "2028-03-31"),
        (2026, 1, "2026-01-01", "2026-12-31"),
        (2028, 1, "2028-01-01", "2028-12-31"),
        (2026, 10, "2026-10-01", "2027-09-30"),
        (2027, 10, "2027-10-01", "2028-09-30"),
        (2026, 12, "2026-12-01", "2027-11-30"),
        (2026, 2, "2026-02-01", "2027-01-31"),
        # March start: the year ends on the last day of February, 29th in a leap year.
        (2026, 3, "2026-03-01", "2027-02-28"),
        (2027, 3, "2027-03-01", "2028-02-29"),
        (1, 1, "0001-01-01", "0001-12-31"),
        (9999, 1, "9999-01-01", "9999-12-31"),
    ],
)
def test_fiscal_year_bounds(fy, start_month, first, last):
    """A fiscal year runs from the first of the start month to the day before a year later."""
    assert fiscal_year_bounds(fy, start_month) == (d(first), d(last))


def test_fiscal_year_bounds_defaults_to_april():
    """Without a start month the fiscal year starts in April."""
    assert fiscal_year_bounds(2026) == (d("2026-04-01"), d("2027-03-31"))


@pytest.mark.parametrize(
    ("fy", "start_month", "length"),
    [(2026, 4, 365), (2027, 4, 366), (2028, 4, 365), (2028, 1, 366), (2027, 1, 365)],
)
def test_fiscal_year_length(fy, start_month, length):
    """A fiscal year containing a February 29 has 366 days, others 365."""
    first, last = fiscal_year_bounds(fy, start_month)
    assert (last - first).days + 1 == length


def test_fiscal_year_past_the_date_range_is_rejected():
    """FY9999 with April start would end in year 10000, which date cannot hold."""
    with pytest.raises(ValueError, match="fiscal year 9999 is out of range"):
        fiscal_year_bounds(9999, 4)


@pytest.mark.parametrize(
    ("day", "start_month", "fy"),
    [
        ("2026-03-31", 4, 2025),
        ("2026-04-01", 4, 2026),
        ("2027-03-31", 4, 2026),
        ("2027-04-01", 4, 2027),
        ("2026-12-31", 4, 2026),
        ("2027-01-01", 4, 2026),
        ("2028-02-29", 4, 2027),
        ("2026-01-01", 1, 2026),
        ("2026-12-31", 1, 2026),
        ("2025-12-31", 1, 2025),
        ("2026-09-30", 10, 2025),
        ("2026-10-01", 10, 2026),
        ("2027-09-30", 10, 2026),
        ("2026-11-30", 12, 2025),
        ("2026-12-01", 12, 2026),
        ("2027-01-31", 2, 2026),
        ("2027-02-01", 2, 2027),
    ],
)
def test_fiscal_year_of_boundaries(day, start_month, fy):
    """The fiscal year is named by the calendar year in which it starts."""
    assert fiscal_year_of(d(day), start_month) == fy


def test_fiscal_year_of_defaults_to_april():
    """Without a start month, March belongs to the previous fiscal year."""
    assert fiscal_year_of(d("2026-03-31")) == 2025
    assert fiscal_year_of(d("2026-04-01")) == 2026


@pytest.mark.parametrize("start_month", ALL_START_MONTHS)
def test_fiscal_year_of_agrees_with_bounds(start_month):
    """Every day of 2025-2028 lies within the bounds of the fiscal year it is assigned to."""
    for day in days(d("2025-01-01"), d("2028-12-31")):
        first, last = fiscal_year_bounds(fiscal_year_of(day, start_month), start_month)
        assert first <= day <= last, day


def test_january_start_fiscal_year_is_calendar_year():
    """With January start the fiscal year always equals the calendar year."""
    for day in days(d("2027-12-25"), d("2028-01-07")):
        assert fiscal_year_of(day, 1) == day.year


# --- tiling ---------------------------------------------------------------------------------


@pytest.mark.parametrize("frequency", FREQUENCIES)
@pytest.mark.parametrize("start_month", ALL_START_MONTHS)
def test_periods_tile_the_fiscal_year(start_month, frequency):
    """The periods of each frequency cover each fiscal year exactly: no gaps, no overlaps."""
    for fy in range(2023, 2030):
        periods = periods_in_fiscal_year(fy, frequency, start_month)
        first, last = fiscal_year_bounds(fy, start_month)
        assert len(periods) == PERIODS_PER_YEAR[frequency]
        assert periods[0].start == first
        assert periods[-1].end == last
        for earlier, later in pairwise(periods):
            assert later.start == earlier.end + timedelta(days=1)
        for period in periods:
            assert period.start <= period.end
            assert period.start.day == 1  # every period starts on the first of a month
            assert (period.end + timedelta(days=1)).day == 1  # and ends on a month's last
            assert period.frequency == frequency
            assert period.fiscal_year == fy
        assert sorted(periods) == periods
        assert len({p.key for p in periods}) == len(periods)
        assert sum((p.end - p.start).days + 1 for p in periods) == (last - first).days + 1


@pytest.mark.parametrize(
    ("frequency", "keys"),
    [
        ("monthly", [f"FY2026-M{n:02d}" for n in range(1, 13)]),
        ("quarterly", ["FY2026-Q1", "FY2026-Q2", "FY2026-Q3", "FY2026-Q4"]),
        ("semiannual", ["FY2026-H1", "FY2026-H2"]),
        ("annual", ["FY2026"]),
        ("event", ["FY2026"]),
    ],
)
def test_period_keys(frequency, keys):
    """Each frequency's keys follow the documented format, in fiscal order."""
    assert [p.key for p in periods_in_fiscal_year(2026, frequency)] == keys


@pytest.mark.parametrize(
    ("start_month", "key", "first", "last"),
    [
        # M01 is the first month of the fiscal year, not January.
        (4, "FY2026-M01", "2026-04-01", "2026-04-30"),
        (4, "FY2026-M09", "2026-12-01", "2026-12-31"),
        (4, "FY2026-M10", "2027-01-01", "2027-01-31"),
        (4, "FY2026-M12", "2027-03-01", "2027-03-31"),
        (1, "FY2026-M01", "2026-01-01", "2026-01-31"),
        (1, "FY2026-M12", "2026-12-01", "2026-12-31"),
        (10, "FY2026-M01", "2026-10-01", "2026-10-31"),
        (10, "FY2026-M04", "2027-01-01", "2027-01-31"),
        (4, "FY2026-Q1", "2026-04-01", "2026-06-30"),
        (4, "FY2026-Q3", "2026-10-01", "2026-12-31"),
        (4, "FY2026-Q4", "2027-01-01", "2027-03-31"),
        (1, "FY2026-Q4", "2026-10-01", "2026-12-31"),
        (10, "FY2026-Q2", "2027-01-01", "2027-03-31"),
        (4, "FY2026-H1", "2026-04-01", "2026-09-30"),
        (4, "FY2026-H2", "2026-10-01", "2027-03-31"),
        (1, "FY2026-H2", "2026-07-01", "2026-12-31"),
        (4, "FY2026", "2026-04-01", "2027-03-31"),
        (1, "FY2026", "2026-01-01", "2026-12-31"),
    ],
)
def test_parse_period_key_bounds(start_month, key, first, last):
    """A key names specific dates, which depend on the fiscal start month."""
    period = parse_period_key(key, start_month)
    assert (period.start, period.end, period.key, period.fiscal_year) == (
        d(first),
        d(last),
        key,
        2026,
    )


@pytest.mark.parametrize(
    ("key", "frequency"),
    [
        ("FY2026-M05", "monthly"),
        ("FY2026-Q2", "quarterly"),
        ("FY2026-H1", "semiannual"),
        ("FY2026", "annual"),  # a bare FY key is read as annual, never as event
    ],
)
def test_parse_period_key_frequency(key, frequency):
    """The key's form determines the frequency of the parsed period."""
    assert parse_period_key(key).frequency == frequency


def test_parse_period_key_defaults_to_april():
    """Without a start month, M01 is April."""
    assert parse_period_key("FY2026-M01").start == d("2026-04-01")


# --- period_for -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "frequency", "start_month", "key", "first", "last"),
    [
        ("2026-04-01", "monthly", 4, "FY2026-M01", "2026-04-01", "2026-04-30"),
        ("2027-01-15", "monthly", 4, "FY2026-M10", "2027-01-01", "2027-01-31"),
        ("2027-03-31", "monthly", 4, "FY2026-M12", "2027-03-01", "2027-03-31"),
        ("2026-06-30", "quarterly", 4, "FY2026-Q1", "2026-04-01", "2026-06-30"),
        ("2026-07-01", "quarterly", 4, "FY2026-Q2", "2026-07-01", "2026-09-30"),
        ("2027-02-14", "quarterly", 4, "FY2026-Q4", "2027-01-01", "2027-03-31"),
        ("2026-03-31", "quarterly", 4, "FY2025-Q4", "2026-01-01", "2026-03-31"),
        ("2027-03-31", "semiannual", 4, "FY2026-H2", "2026-10-01", "2027-03-31"),
        ("2026-09-30", "semiannual", 4, "FY2026-H1", "2026-04-01", "2026-09-30"),
        ("2026-12-31", "annual", 4, "FY2026", "2026-04-01", "2027-03-31"),
        ("2026-12-31", "quarterly", 1, "FY2026-Q4", "2026-10-01", "2026-12-31"),
        ("2026-03-15", "monthly", 1, "FY2026-M03", "2026-03-01", "2026-03-31"),
        ("2026-10-01", "monthly", 10, "FY2026-M01", "2026-10-01", "2026-10-31"),
        ("2026-09-30", "annual", 10, "FY2025", "2025-10-01", "2026-09-30"),
        ("2027-03-31", "semiannual", 10, "FY2026-H1", "2026-10-01", "2027-03-31"),
    ],
)
def test_period_for_examples(day, frequency, start_month, key, first, last):
    """period_for finds the containing period across calendar and fiscal year boundaries."""
    period = period_for(d(day), frequency, start_month)
    assert (period.key, period.start, period.end) == (key, d(first), d(last))
    assert period.contains(d(day))


@pytest.mark.parametrize("frequency", FREQUENCIES)
@pytest.mark.parametrize("start_month", ALL_START_MONTHS)
def test_period_for_every_day(start_month, frequency):
    """For each day of 2026-2028 period_for returns the listed period that contains it."""
    listed = {fy: periods_in_fiscal_year(fy, frequency, start_month) for fy in range(2025, 2029)}
    for day in days(d("2026-01-01"), d("2028-12-31")):
        period = period_for(day, frequency, start_month)
        assert period.contains(day)
        assert period in listed[period.fiscal_year]
        assert period.fiscal_year == fiscal_year_of(day, start_month)


def test_period_for_defaults_to_april():
    """Without a start month, quarters follow an April fiscal year."""
    assert period_for(d("2026-04-01"), "quarterly").key == "FY2026-Q1"


# --- event ----------------------------------------------------------------------------------


@pytest.mark.parametrize("start_month", ALL_START_MONTHS)
def test_event_periods_are_annual_but_keep_their_name(start_month):
    """An event control's period has the annual dates and key, with frequency "event"."""
    for fy in (2026, 2027):
        (event,) = periods_in_fiscal_year(fy, "event", start_month)
        (annual,) = periods_in_fiscal_year(fy, "annual", start_month)
        assert event.frequency == "event"
        assert replace(event, frequency="annual") == annual
        assert event.key == f"FY{fy}"


def test_event_period_for_and_next():
    """period_for and next_period keep the event frequency."""
    period = period_for(d("2027-01-10"), "event")
    assert (period.key, period.frequency, period.start, period.end) == (
        "FY2026",
        "event",
        d("2026-04-01"),
        d("2027-03-31"),
    )
    following = next_period(period)
    assert (following.key, following.frequency) == ("FY2027", "event")


def test_event_and_annual_periods_differ():
    """Same dates and key, but the frequency keeps them apart in comparisons and sets."""
    event = period_for(d("2026-05-01"), "event")
    annual = period_for(d("2026-05-01"), "annual")
    assert event != annual
    assert len({event, annual}) == 2


# --- key round trip -------------------------------------------------------------------------


@pytest.mark.parametrize("frequency", [f for f in FREQUENCIES if f != "event"])
@pytest.mark.parametrize("start_month", ALL_START_MONTHS)
def test_key_round_trip(start_month, frequency):
    """parse_period_key(period.key) gives back the period, for many years and start months."""
    for fy in ROUND_TRIP_YEARS:
        for period in periods_in_fiscal_year(fy, frequency, start_month):
            assert parse_period_key(period.key, start_month) == period


@pytest.mark.parametrize("start_month", ALL_START_MONTHS)
def test_event_key_round_trip(start_month):
    """An event key parses to the annual period; period_for_key restores the event name."""
    for fy in ROUND_TRIP_YEARS:
        (period,) = periods_in_fiscal_year(fy, "event", start_month)
        assert parse_period_key(period.key, start_month) == replace(period, frequency="annual")
        assert period_for_key(period.key, "event", start_month) == period


@pytest.mark.parametrize("frequency", FREQUENCIES)
@pytest.mark.parametrize("start_month", [1, 4, 10])
def test_period_for_key_round_trip(start_month, frequency):
    """period_for_key(period.key, period.frequency) gives back every period."""
    for fy in ROUND_TRIP_YEARS:
        for period in periods_in_fiscal_year(fy, frequency, start_month):
            assert period_for_key(period.key, frequency, start_month) == period


@pytest.mark.parametrize(
    ("key", "frequency"),
    [
        ("FY2026-Q1", "monthly"),
        ("FY2026-M01", "quarterly"),
        ("FY2026", "semiannual"),
        ("FY2026-H1", "annual"),
        ("FY2026-Q1", "event"),
    ],
)
def test_period_for_key_rejects_a_key_of_another_frequency(key, frequency):
    """A key must fit the control's frequency."""
    with pytest.raises(ValueError, match=f"not a {frequency} one"):
        period_for_key(key, frequency)


def test_period_for_key_rejects_unknown_frequency():
    """period_for_key validates the frequency before the key."""
    with pytest.raises(ValueError, match="unknown frequency 'weekly'"):
        period_for_key("FY2026", "weekly")


# --- leap years -----------------------------------------------------------------------------


def test_leap_day_in_fiscal_2027_with_april_start():
    """FY2027 (April start) contains 2028-02-29, in M11, Q4 and H2."""
    leap_day = d("2028-02-29")
    first, last = fiscal_year_bounds(2027, 4)
    assert first <= leap_day <= last
    assert fiscal_year_of(leap_day, 4) == 2027
    assert period_for(leap_day, "monthly").key == "FY2027-M11"
    assert period_for(leap_day, "quarterly").key == "FY2027-Q4"
    assert period_for(leap_day, "semiannual").key == "FY2027-H2"
    assert period_for(leap_day, "annual").contains(leap_day)


@pytest.mark.parametrize(
    ("key", "start_month", "first", "last", "length"),
    [
        ("FY2027-M11", 4, "2028-02-01", "2028-02-29", 29),
        ("FY2026-M11", 4, "2027-02-01", "2027-02-28", 28),
        ("FY2027-Q4", 4, "2028-01-01", "2028-03-31", 91),
        ("FY2026-Q4", 4, "2027-01-01", "2027-03-31", 90),
        ("FY2027-H2", 4, "2027-10-01", "2028-03-31", 183),
        ("FY2028-Q1", 1, "2028-01-01", "2028-03-31", 91),
        ("FY2028-M02", 1, "2028-02-01", "2028-02-29", 29),
        # 2000 is a leap year (divisible by 400), 2100 is not (divisible by 100 only).
        ("FY2000-M02", 1, "2000-02-01", "2000-02-29", 29),
        ("FY2100-M02", 1, "2100-02-01", "2100-02-28", 28),
        ("FY2099-M11", 4, "2100-02-01", "2100-02-28", 28),
        # With March start the year ends in February.
        ("FY2027-M12", 3, "2028-02-01", "2028-02-29", 29),
        ("FY2027-Q4", 3, "2027-12-01", "2028-02-29", 91),
    ],
)
def test_leap_year_periods(key, start_month, first, last, length):
    """February periods end on the 29th exactly in leap years."""
    period = parse_period_key(key, start_month)
    assert (period.start, period.end) == (d(first), d(last))
    assert (period.end - period.start).days + 1 == length
    if period.end.month == 2:
        assert (period.end.day == 29) == calendar.isleap(period.end.year)


# --- next_period ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "start_month", "following"),
    [
        ("FY2026-Q4", 4, "FY2027-Q1"),
        ("FY2026-Q1", 4, "FY2026-Q2"),
        ("FY2026-M12", 4, "FY2027-M01"),
        ("FY2026-M09", 4, "FY2026-M10"),  # December 2026 -> January 2027, same FY
        ("FY2026-H2", 4, "FY2027-H1"),
        ("FY2026-H1", 4, "FY2026-H2"),
        ("FY2026", 4, "FY2027"),
        ("FY2026-M12", 1, "FY2027-M01"),
        ("FY2026-Q4", 1, "FY2027-Q1"),
        ("FY2026-Q4", 10, "FY2027-Q1"),
    ],
)
def test_next_period(key, start_month, following):
    """next_period steps within a fiscal year and across into the next one."""
    period = parse_period_key(key, start_month)
    nxt = next_period(period, start_month)
    assert nxt.key == following
    assert nxt.start == period.end + timedelta(days=1)


def test_next_period_q4_to_q1_dates():
    """FY2026-Q4 (Jan-Mar 2027) is followed by FY2027-Q1 (Apr-Jun 2027)."""
    nxt = next_period(parse_period_key("FY2026-Q4"))
    assert (nxt.start, nxt.end, nxt.fiscal_year) == (d("2027-04-01"), d("2027-06-30"), 2027)


@pytest.mark.parametrize("frequency", FREQUENCIES)
@pytest.mark.parametrize("start_month", ALL_START_MONTHS)
def test_next_period_walks_the_years(start_month, frequency):
    """Repeated next_period from the first period lists every period of FY2026-FY2028."""
    expected = [
        p for fy in range(2026, 2029) for p in periods_in_fiscal_year(fy, frequency, start_month)
    ]
    walked = [expected[0]]
    while len(walked) < len(expected):
        walked.append(next_period(walked[-1], start_month))
    assert walked == expected


def test_next_period_rejects_a_period_of_another_start_month():
    """A period built under January start is not silently re-cut for an April year."""
    period = parse_period_key("FY2026-Q1", 1)  # January - March 2026
    with pytest.raises(ValueError, match="not a quarterly period of a fiscal year starting in"):
        next_period(period, 4)


def test_next_period_rejects_a_hand_made_period():
    """A Period whose dates do not match its key is rejected."""
    bogus = Period(d("2026-04-01"), d("2026-04-15"), "FY2026-M01", "monthly", 2026)
    with pytest.raises(ValueError, match="FY2026-M01"):
        next_period(bogus)


# --- Period ---------------------------------------------------------------------------------


def test_period_contains_is_inclusive():
    """contains() includes both the first and the last day and nothing outside."""
    period = parse_period_key("FY2026-Q1")  # 2026-04-01 .. 2026-06-30
    assert period.contains(d("2026-04-01"))
    assert period.contains(d("2026-06-30"))
    assert period.contains(d("2026-05-15"))
    assert not period.contains(d("2026-03-31"))
    assert not period.contains(d("2026-07-01"))


def test_period_is_frozen_and_ordered():
    """Periods are immutable, hashable and sort by start date."""
    q1, q2 = parse_period_key("FY2026-Q1"), parse_period_key("FY2026-Q2")
    with pytest.raises(AttributeError):
        q1.key = "FY2026-Q3"  # type: ignore[misc]
    assert q1 < q2
    assert sorted([q2, q1]) == [q1, q2]
    assert hash(q1) == hash(parse_period_key("FY2026-Q1"))


# --- business days --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "weekday", "holiday"),
    [
        # Golden Week 2026: 5/3 Sunday (Constitution Day), 5/4 Monday (Greenery Day),
        # 5/5 Tuesday (Children's Day), 5/6 Wednesday (substitute for 5/3 falling on Sunday).
        ("2026-05-03", calendar.SUNDAY, True),
        ("2026-05-04", calendar.MONDAY, True),
        ("2026-05-05", calendar.TUESDAY, True),
        ("2026-05-06", calendar.WEDNESDAY, True),
        # Golden Week 2027: 5/3 Monday, 5/4 Tuesday, 5/5 Wednesday; 4/29 Thursday Showa Day.
        ("2027-04-29", calendar.THURSDAY, True),
        ("2027-05-03", calendar.MONDAY, True),
        ("2027-05-04", calendar.TUESDAY, True),
        ("2027-05-05", calendar.WEDNESDAY, True),
        # New Year's Day 2027 is a Friday; Coming of Age Day 2027 is Monday 1/11.
        ("2027-01-01", calendar.FRIDAY, True),
        ("2027-01-11", calendar.MONDAY, True),
        # Marine Day 2026: third Monday of July, 7/20.
        ("2026-07-20", calendar.MONDAY, True),
    ],
)
def test_public_holidays_are_not_business_days(day, weekday, holiday):
    """Japanese public holidays are not business days, whatever the weekday."""
    assert d(day).weekday() == weekday
    assert jpholiday.is_holiday(d(day)) is holiday
    assert not is_business_day(d(day))


@pytest.mark.parametrize(
    "day",
    [
        "2026-12-29",  # Tuesday
        "2026-12-30",  # Wednesday
        "2026-12-31",  # Thursday
        "2027-01-01",  # Friday, also New Year's Day
        "2027-01-02",  # Saturday
        "2027-01-03",  # Sunday
        "2027-12-29",  # Wednesday
        "2028-01-03",  # Monday
    ],
)
def test_year_end_closure_is_not_business_days(day):
    """Dec 29 - Jan 3 is closed, weekday or not."""
    assert not is_business_day(d(day))


def test_closure_weekdays_are_not_public_holidays():
    """Dec 29-31 and Jan 2-3 are not public holidays: the closure rule alone excludes them."""
    for day in ("2026-12-29", "2026-12-30", "2026-12-31", "2027-12-30", "2028-01-03"):
        assert d(day).weekday() < calendar.SATURDAY
        assert not jpholiday.is_holiday(d(day))
        assert not is_business_day(d(day))


@pytest.mark.parametrize(
    ("day", "weekday"),
    [
        ("2026-12-28", calendar.MONDAY),  # last business day of 2026
        ("2027-01-04", calendar.MONDAY),  # first business day of 2027
        ("2026-05-01", calendar.FRIDAY),  # before Golden Week 2026
        ("2026-05-07", calendar.THURSDAY),  # after Golden Week 2026
        ("2027-04-30", calendar.FRIDAY),  # between Showa Day and Golden Week 2027
        ("2027-05-06", calendar.THURSDAY),  # after Golden Week 2027
        ("2026-07-14", calendar.TUESDAY),
        ("2027-01-14", calendar.THURSDAY),
        ("2028-02-29", calendar.TUESDAY),
    ],
)
def test_ordinary_weekdays_are_business_days(day, weekday):
    """A weekday that is neither a holiday nor in the closure is a business day."""
    assert d(day).weekday() == weekday
    assert not jpholiday.is_holiday(d(day))
    assert is_business_day(d(day))


@pytest.mark.parametrize(
    "day", ["2026-07-11", "2026-07-12", "2027-05-01", "2027-05-02", "2026-05-02", "2028-03-04"]
)
def test_weekends_are_not_business_days(day):
    """Saturdays and Sundays are never business days."""
    assert d(day).weekday() in (calendar.SATURDAY, calendar.SUNDAY)
    assert not is_business_day(d(day))


def test_is_business_day_matches_its_definition_for_years():
    """Over 2025-2028, business day == weekday, not a jpholiday holiday, not the closure."""
    count_2027 = 0
    for day in days(d("2025-01-01"), d("2028-12-31")):
        expected = (
            day.weekday() < calendar.SATURDAY
            and not jpholiday.is_holiday(day)
            and not is_closure(day)
        )
        assert is_business_day(day) == expected, day
        count_2027 += expected and day.year == 2027
    # Sanity check on the scale: a Japanese year has roughly 240-245 working days.
    assert 235 <= count_2027 <= 250


# --- previous_business_day ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "expected"),
    [
        # 2027-01-03 is a Sunday in the closure; Dec 29-31 are closed, 12/28 is Monday.
        ("2027-01-03", "2026-12-28"),
        ("2027-01-01", "2026-12-28"),
        ("2026-12-29", "2026-12-28"),
        ("2026-12-28", "2026-12-28"),
        # 2026-05-06 (substitute holiday) back over 5/5, 5/4, 5/3, Sat 5/2 to Friday 5/1.
        ("2026-05-06", "2026-05-01"),
        ("2026-05-03", "2026-05-01"),
        # 2027-05-05 back over 5/4, 5/3, Sun 5/2, Sat 5/1 to Friday 4/30.
        ("2027-05-05", "2027-04-30"),
        # Monday 2026-07-20 is Marine Day; Sunday 7/19 and Saturday 7/18 precede it.
        ("2026-07-20", "2026-07-17"),
        ("2026-07-12", "2026-07-10"),  # Sunday -> Friday
        ("2026-07-11", "2026-07-10"),  # Saturday -> Friday
        ("2026-07-13", "2026-07-13"),  # a plain Monday stays
        # Monday 2027-01-11 is Coming of Age Day -> Friday 1/8.
        ("2027-01-11", "2027-01-08"),
        # Closure 2027-12-29 (Wed) .. 2028-01-03 (Mon): back to Tuesday 2027-12-28.
        ("2028-01-03", "2027-12-28"),
    ],
)
def test_previous_business_day(day, expected):
    """previous_business_day returns the day itself or the latest business day before it."""
    result = previous_business_day(d(day))
    assert result == d(expected)
    assert is_business_day(result)


def test_previous_business_day_weekday_expectations():
    """The hand-computed weekdays used above agree with the real calendar."""
    assert d("2026-12-28").weekday() == calendar.MONDAY
    assert d("2027-01-03").weekday() == calendar.SUNDAY
    assert d("2026-05-01").weekday() == calendar.FRIDAY
    assert d("2027-04-30").weekday() == calendar.FRIDAY
    assert d("2026-07-17").weekday() == calendar.FRIDAY
    assert d("2027-01-08").weekday() == calendar.FRIDAY
    assert d("2027-12-28").weekday() == calendar.TUESDAY


def test_previous_business_day_property():
    """For each day of 2026-2027 the result is the latest business day on or before it."""
    for day in days(d("2026-01-05"), d("2027-12-31")):
        result = previous_business_day(day)
        assert result <= day
        assert is_business_day(result)
        assert not any(is_business_day(x) for x in days(result + timedelta(days=1), day))


# --- due dates ------------------------------------------------------------------------------


def test_due_date_plain_quarter():
    """FY2026-Q1 ends 2026-06-30; +14 days is Tuesday 2026-07-14, a business day."""
    period = parse_period_key("FY2026-Q1")
    assert period.end == d("2026-06-30")
    assert d("2026-07-14").weekday() == calendar.TUESDAY
    assert due_date(period) == d("2026-07-14")


def test_due_date_default_grace_is_14_days():
    """The default grace is 14 days."""
    for period in periods_in_fiscal_year(2026, "monthly"):
        assert due_date(period) == due_date(period, 14)


@pytest.mark.parametrize(
    ("key", "start_month", "grace", "raw", "expected"),
    [
        # FY2026-M09 (April start) is December 2026; +14 = Thursday 2027-01-14, no shift.
        ("FY2026-M09", 4, 14, "2027-01-14", "2027-01-14"),
        ("FY2026-Q3", 4, 14, "2027-01-14", "2027-01-14"),
        # +2 lands on Saturday 2027-01-02 in the closure -> Monday 2026-12-28.
        ("FY2026-M09", 4, 2, "2027-01-02", "2026-12-28"),
        # +1 lands on New Year's Day (Friday) -> Monday 2026-12-28.
        ("FY2026-M09", 4, 1, "2027-01-01", "2026-12-28"),
        # +0: Thursday 2026-12-31 is itself in the closure -> Monday 2026-12-28.
        ("FY2026-M09", 4, 0, "2026-12-31", "2026-12-28"),
        # January start: FY2026-Q4 ends 2026-12-31; +3 = Sunday 2027-01-03 -> 2026-12-28.
        ("FY2026-Q4", 1, 3, "2027-01-03", "2026-12-28"),
        # November 2026 (M08) ends 11/30; +29 = Tuesday 2026-12-29, closure -> 12/28.
        ("FY2026-M08", 4, 29, "2026-12-29", "2026-12-28"),
        # +4 = Monday 2027-01-04, the first business day after the closure: no shift.
        ("FY2026-M09", 4, 4, "2027-01-04", "2027-01-04"),
        # FY2026-Q4 ends 2027-03-31; +33/+34/+35 = 2027-05-03/04/05 (Golden Week, Mon-Wed);
        # back over Sun 5/2, Sat 5/1 to Friday 2027-04-30 (4/29 Showa Day is not reached).
        ("FY2026-Q4", 4, 33, "2027-05-03", "2027-04-30"),
        ("FY2026-Q4", 4, 34, "2027-05-04", "2027-04-30"),
        ("FY2026-Q4", 4, 35, "2027-05-05", "2027-04-30"),
        # +36 = Thursday 2027-05-06, business day again.
        ("FY2026-Q4", 4, 36, "2027-05-06", "2027-05-06"),
        # Annual FY2026 (April start) ends 2027-03-31; +14 = Wednesday 2027-04-14.
        ("FY2026", 4, 14, "2027-04-14", "2027-04-14"),
        # FY2025-Q4 ends 2026-03-31; +36 = Wednesday 2026-05-06 (substitute holiday),
        # back over 5/5, 5/4, Sun 5/3, Sat 5/2 to Friday 2026-05-01.
        ("FY2025-Q4", 4, 36, "2026-05-06", "2026-05-01"),
        # Quarterly Jan-start FY2026-Q2 ends 2026-06-30; +20 = Monday 2026-07-20, Marine Day
        # -> Friday 2026-07-17.
        ("FY2026-Q2", 1, 20, "2026-07-20", "2026-07-17"),
        # Monthly FY2026-M02 (May 2026) +13 = Saturday 2026-06-13 -> Friday 6/12.
        ("FY2026-M02", 4, 13, "2026-06-13", "2026-06-12"),
    ],
)
def test_due_date_shifts(key, start_month, grace, raw, expected):
    """The due date moves back to the previous business day when end + grace is not one."""
    period = parse_period_key(key, start_month)
    assert period.end + timedelta(days=grace) == d(raw)
    assert due_date(period, grace) == d(expected)
    # Cross-check against the real calendar rather than trusting the hand-computed table.
    raw_day = d(raw)
    raw_open = (
        raw_day.weekday() < calendar.SATURDAY
        and not jpholiday.is_holiday(raw_day)
        and not is_closure(raw_day)
    )
    assert (d(expected) == raw_day) == raw_open


def test_due_date_golden_week_2027_really_is_holidays():
    """2027-05-03..05 are jpholiday holidays and 2027-04-30 a working Friday."""
    for day in ("2027-05-03", "2027-05-04", "2027-05-05"):
        assert jpholiday.is_holiday(d(day))
    assert d("2027-04-30").weekday() == calendar.FRIDAY
    assert not jpholiday.is_holiday(d("2027-04-30"))


@pytest.mark.parametrize("frequency", FREQUENCIES)
@pytest.mark.parametrize("grace", [0, 1, 7, 14, 30, 45])
def test_due_date_is_a_business_day_within_grace(frequency, grace):
    """A due date is a business day, no later than end + grace and never far before it."""
    for fy in (2025, 2026, 2027):
        for period in periods_in_fiscal_year(fy, frequency):
            due = due_date(period, grace)
            assert is_business_day(due)
            assert due <= period.end + timedelta(days=grace)
            # The longest run of non-business days here is the closure plus weekends (< 10).
            assert due > period.end + timedelta(days=grace - 10)


def test_due_date_rejects_negative_grace():
    """Negative grace days are a configuration error."""
    with pytest.raises(ValueError, match="grace days must not be negative"):
        due_date(parse_period_key("FY2026-Q1"), -1)


# --- parse_fiscal_year ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fy"), [("FY2026", 2026), ("2026", 2026), ("FY1999", 1999), ("0001", 1)]
)
def test_parse_fiscal_year(text, fy):
    """Both "FY2026" and "2026" parse to 2026."""
    assert parse_fiscal_year(text) == fy


@pytest.mark.parametrize(
    "text",
    [
        "",
        "FY",
        "FYabc",
        "FY26",
        "26",
        "20260",
        "FY2026-Q1",
        "fy2026",
        "FY 2026",
        " 2026",
        "2026\n",
        "FY0000",
        "２０２６",  # full-width digits
        "FY-2026",
    ],
)
def test_parse_fiscal_year_rejects(text):
    """Anything but FYnnnn or nnnn is a ValueError naming the bad text."""
    with pytest.raises(ValueError, match="invalid fiscal year"):
        parse_fiscal_year(text)


def test_parse_fiscal_year_rejects_non_text():
    """A non-string is rejected with a ValueError, not a TypeError."""
    with pytest.raises(ValueError, match="invalid fiscal year"):
        parse_fiscal_year(2026)  # type: ignore[arg-type]


# --- invalid inputs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("FY2026-Q5", "quarterly periods run Q1..Q4"),
        ("FY2026-Q0", "quarterly periods run Q1..Q4"),
        ("FY2026-M13", "monthly periods run M01..M12"),
        ("FY2026-M00", "monthly periods run M01..M12"),
        ("FY2026-H3", "semiannual periods run H1..H2"),
        ("FY2026-H0", "semiannual periods run H1..H2"),
        ("FY0000", "fiscal year must be 0001 or later"),
        ("2026-Q1", "expected FY2026"),
        ("FYabc", "expected FY2026"),
        ("", "expected FY2026"),
        ("FY2026-M1", "expected FY2026"),
        ("FY2026-M001", "expected FY2026"),
        ("FY2026-Q01", "expected FY2026"),
        ("FY2026-W01", "expected FY2026"),
        ("FY2026-", "expected FY2026"),
        ("FY26-Q1", "expected FY2026"),
        ("fy2026-q1", "expected FY2026"),
        ("FY2026-Q1 ", "expected FY2026"),
        ("FY2026-Q1\n", "expected FY2026"),
        ("FY２０２６", "expected FY2026"),  # full-width digits
        ("FY2026Q1", "expected FY2026"),
    ],
)
def test_parse_period_key_rejects_bad_keys(key, message):
    """Bad keys raise ValueError naming the key and what was expected."""
    with pytest.raises(ValueError, match=message) as excinfo:
        parse_period_key(key)
    assert repr(key) in str(excinfo.value)


def test_parse_period_key_rejects_non_text():
    """A non-string key is rejected with a ValueError."""
    with pytest.raises(ValueError, match="invalid period key"):
        parse_period_key(None)  # type: ignore[arg-type]


BAD_START_MONTHS = [0, 13, -1, 4.0, "4", None, True]

START_MONTH_CALLS = {
    "fiscal_year_of": lambda m: fiscal_year_of(d("2026-05-01"), m),
    "fiscal_year_bounds": lambda m: fiscal_year_bounds(2026, m),
    "period_for": lambda m: period_for(d("2026-05-01"), "monthly", m),
    "periods_in_fiscal_year": lambda m: periods_in_fiscal_year(2026, "quarterly", m),
    "next_period": lambda m: next_period(parse_period_key("FY2026-Q1"), m),
    "parse_period_key": lambda m: parse_period_key("FY2026-Q1", m),
    "period_for_key": lambda m: period_for_key("FY2026-Q1", "quarterly", m),
}


@pytest.mark.parametrize("start_month", BAD_START_MONTHS)
@pytest.mark.parametrize("call", START_MONTH_CALLS.values(), ids=START_MONTH_CALLS.keys())
def test_invalid_start_month(call, start_month):
    """Every function taking a start month rejects anything but an integer 1..12."""
    with pytest.raises(ValueError, match=r"start month must be an integer 1\.\.12"):
        call(start_month)


FREQUENCY_CALLS = {
    "period_for": lambda f: period_for(d("2026-05-01"), f),
    "periods_in_fiscal_year": lambda f: periods_in_fiscal_year(2026, f),
    "period_for_key": lambda f: period_for_key("FY2026", f),
}


@pytest.mark.parametrize("frequency", ["weekly", "Monthly", "", "daily", "year", None])
@pytest.mark.parametrize("call", FREQUENCY_CALLS.values(), ids=FREQUENCY_CALLS.keys())
def test_unknown_frequency(call, frequency):
    """An unknown frequency raises ValueError listing the allowed ones."""
    with pytest.raises(ValueError, match="unknown frequency") as excinfo:
        call(frequency)
    message = str(excinfo.value)
    assert repr(frequency) in message
    for allowed in FREQUENCIES:
        assert allowed in message


def test_next_period_rejects_unknown_frequency():
    """A hand-made Period with an unknown frequency cannot be advanced."""
    bogus = Period(d("2026-04-01"), d("2026-04-07"), "FY2026-W01", "weekly", 2026)
    with pytest.raises(ValueError, match="unknown frequency 'weekly'"):
        next_period(bogus)
