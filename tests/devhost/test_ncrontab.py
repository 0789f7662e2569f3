"""The NCRONTAB parser and next-occurrence search."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devhost.errors import DevHostError
from devhost.ncrontab import CronSchedule, parse_field


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "low", "high", "expected"),
    [
        ("*", 0, 5, {0, 1, 2, 3, 4, 5}),
        ("3", 0, 59, {3}),
        ("1-4", 0, 59, {1, 2, 3, 4}),
        ("*/15", 0, 59, {0, 15, 30, 45}),
        ("10-30/10", 0, 59, {10, 20, 30}),
        ("1,5,7", 0, 59, {1, 5, 7}),
        ("1-3,10-20/5", 0, 59, {1, 2, 3, 10, 15, 20}),
        ("5/20", 0, 59, {5, 25, 45}),
    ],
)
def test_field_forms(text: str, low: int, high: int, expected: set[int]) -> None:
    assert parse_field(text, low, high) == expected


def test_month_and_weekday_names() -> None:
    schedule = CronSchedule.parse("0 0 9 * JAN-mar Mon-FRI")
    assert schedule.months == {1, 2, 3}
    assert schedule.weekdays == {1, 2, 3, 4, 5}
    assert CronSchedule.parse("0 0 0 * * sun,sat").weekdays == {0, 6}


@pytest.mark.parametrize(
    "expression",
    [
        "* * * * *",  # five fields: NCRONTAB with seconds needs six
        "60 * * * * *",
        "* * 24 * * *",
        "* * * 0 * *",
        "* * * * 13 *",
        "* * * * * 7",
        "*/0 * * * * *",
        "5-1 * * * * *",
        "a * * * * *",
        "1,,2 * * * * *",
        "* * * * FOO *",
    ],
)
def test_invalid_expressions(expression: str) -> None:
    with pytest.raises(DevHostError):
        CronSchedule.parse(expression)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/1 * * * * *", at("2024-01-01 00:00:00"), at("2024-01-01 00:00:01")),
        ("*/5 * * * * *", at("2024-01-01 00:00:03"), at("2024-01-01 00:00:05")),
        ("0 */5 * * * *", at("2024-01-01 00:04:59"), at("2024-01-01 00:05:00")),
        ("0 */5 * * * *", at("2024-01-01 00:05:00"), at("2024-01-01 00:10:00")),
        ("0 30 9 * * *", at("2024-01-01 10:00:00"), at("2024-01-02 09:30:00")),
        ("0 0 0 1 1 *", at("2024-06-01 00:00:00"), at("2025-01-01 00:00:00")),
        ("0 0 12 29 2 *", at("2024-03-01 00:00:00"), at("2028-02-29 12:00:00")),  # next leap day
        ("0 0 9 * * MON", at("2024-01-03 00:00:00"), at("2024-01-08 09:00:00")),  # 2024-01-08 is a Monday
        ("0 0 0 13 * FRI", at("2024-01-01 00:00:00"), at("2024-09-13 00:00:00")),  # day AND weekday, as NCrontab
        ("59 59 23 31 12 *", at("2024-12-31 23:59:58"), at("2024-12-31 23:59:59")),
        ("0 0 0 * * *", at("2024-12-31 23:59:59"), at("2025-01-01 00:00:00")),
    ],
)
def test_next_occurrence(expression: str, after: datetime, expected: datetime) -> None:
    assert CronSchedule.parse(expression).next_after(after) == expected


def test_next_is_strictly_after_and_ignores_microseconds() -> None:
    schedule = CronSchedule.parse("*/10 * * * * *")
    assert schedule.next_after(at("2024-01-01 00:00:10")) == at("2024-01-01 00:00:20")
    assert schedule.next_after(at("2024-01-01 00:00:10").replace(microsecond=500)) == at("2024-01-01 00:00:20")


def test_impossible_schedule_is_reported() -> None:
    with pytest.raises(DevHostError, match="never fires"):
        CronSchedule.parse("0 0 0 30 2 *").next_after(at("2024-01-01 00:00:00"))


# ---- croniter reads the schedule; the NCRONTAB check keeps it to what the Functions host accepts ----

def test_seconds_come_first_and_occurrences_follow_each_other() -> None:
    schedule = CronSchedule.parse("10-20/5 30 * * * *")
    moment, seen = at("2024-01-01 00:29:59"), []
    for _ in range(4):
        moment = schedule.next_after(moment)
        seen.append(moment)
    assert seen == [at("2024-01-01 00:30:10"), at("2024-01-01 00:30:15"), at("2024-01-01 00:30:20"),
                    at("2024-01-01 01:30:10")]
    assert schedule.seconds == {10, 15, 20} and schedule.minutes == {30} and len(schedule.hours) == 24


def test_the_tzinfo_given_is_kept() -> None:
    found = CronSchedule.parse("30 * * * * *").next_after(at("2024-01-01 00:00:00"))
    assert found.tzinfo is UTC and found == at("2024-01-01 00:00:30")


def test_a_one_value_range_is_that_value() -> None:
    assert parse_field("5-5", 0, 59) == {5}  # croniter alone would read the whole field
    assert CronSchedule.parse("0 0 0 * * MON-MON").weekdays == {1}
    assert CronSchedule.parse("5-5 * * * * *").next_after(at("2024-01-01 00:00:06")) == at("2024-01-01 00:01:05")


def test_parse_field_reads_names_of_the_field_it_is_told() -> None:
    assert parse_field("jan-mar,dec", 1, 12, field="month") == {1, 2, 3, 12}
    assert parse_field("sat", 0, 6, field="day-of-week") == {6}
    with pytest.raises(DevHostError, match="unknown field"):
        parse_field("1", 0, 59, field="year")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * L * *", r"invalid day 'L'"),  # croniter: last day of the month
        ("* * * 15W * *", r"invalid day '15W'"),  # croniter: nearest weekday
        ("* * * * * 5#3", r"invalid day-of-week '5#3'"),  # croniter: third Friday
        ("* * * ? * *", r"invalid day '\?'"),
        ("H * * * * *", r"invalid second 'H'"),  # croniter: hashed
        ("@daily", "expected 6 fields"),
        ("0 0 0 * * * 2030", "expected 6 fields"),  # croniter: a year field
        ("0 0 0 * * SAT-MON", "runs backwards"),  # croniter wraps it around
        ("* * * * * 7", "outside 0-6"),  # croniter: 7 is Sunday
        ("* * * 0 * *", "day value 0 is outside 1-31"),
        ("*/0 * * * * *", r"invalid schedule '\*/0 \* \* \* \* \*': .*step '0'"),  # croniter's own check
    ],
)
def test_what_ncrontab_refuses_is_refused_with_the_reason(expression: str, message: str) -> None:
    with pytest.raises(DevHostError, match=message):
        CronSchedule.parse(expression)


@settings(max_examples=60, deadline=None)
@given(
    seconds=st.sets(st.integers(0, 59), min_size=1, max_size=4),
    minutes=st.sets(st.integers(0, 59), min_size=1, max_size=4),
    start=st.integers(0, 3 * 3600),
)
def test_next_after_is_the_first_matching_second(seconds: set[int], minutes: set[int], start: int) -> None:
    listed = [",".join(map(str, sorted(values))) for values in (seconds, minutes)]
    schedule = CronSchedule.parse(f"{listed[0]} {listed[1]} * * * *")
    moment = at("2024-02-28 22:00:00") + timedelta(seconds=start)
    found = schedule.next_after(moment)
    candidate = moment + timedelta(seconds=1)
    while not (candidate.second in seconds and candidate.minute in minutes):  # brute force, one second at a time
        candidate += timedelta(seconds=1)
    assert found == candidate
