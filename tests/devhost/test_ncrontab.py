"""The NCRONTAB parser and next-occurrence search."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

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
