"""NCRONTAB schedules with seconds, as the Functions timer trigger reads them.

Six fields: ``{second} {minute} {hour} {day} {month} {day-of-week}``. Each field takes ``*``,
numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, and comma lists; months and weekdays also
take three-letter names. Like NCrontab (and unlike Vixie cron), a day must match both the day and
the day-of-week field. The search keeps the tzinfo it is given: the caller picks the clock (UTC).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta

from devhost.errors import DevHostError

_MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_abbr) if name}
_WEEKDAYS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
# (name, low, high, names) for each of the six fields, in order.
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 0, 6, _WEEKDAYS),
)
# Far enough to cover leap days and rare weekday/day combinations (28 years repeat the calendar).
_SEARCH_YEARS = 30


def _value(text: str, low: int, high: int, names: dict[str, int], field: str) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise DevHostError(f"invalid {field} value {text!r}")
    number = int(text)
    if not low <= number <= high:
        raise DevHostError(f"{field} value {number} is outside {low}-{high}")
    return number


def _range(text: str, low: int, high: int, names: dict[str, int], field: str) -> tuple[int, int]:
    if text == "*":
        return low, high
    if "-" in text:
        first, last = text.split("-", 1)
        start, end = _value(first, low, high, names, field), _value(last, low, high, names, field)
        if start > end:
            raise DevHostError(f"invalid {field} range {text!r}")
        return start, end
    single = _value(text, low, high, names, field)
    return single, single


def parse_field(
    text: str, low: int, high: int, names: dict[str, int] | None = None, field: str = "field"
) -> frozenset[int]:
    """Return the set of values one field allows."""
    allowed: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        if not base:
            raise DevHostError(f"invalid {field} {text!r}")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise DevHostError(f"invalid {field} step in {text!r}")
            step = int(step_text)
        start, end = _range(base, low, high, names or {}, field)
        if step_text and "-" not in base and base != "*":
            end = high  # ``5/15`` means from 5 to the end, every 15
        allowed.update(range(start, end + 1, step))
    return frozenset(allowed)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed six-field NCRONTAB expression."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        parts = expression.split()
        if len(parts) != len(_FIELDS):
            raise DevHostError(
                f"invalid schedule {expression!r}: expected 6 fields "
                "'{second} {minute} {hour} {day} {month} {day-of-week}'"
            )
        fields = zip(parts, _FIELDS, strict=True)
        sets = [parse_field(part, low, high, names, name) for part, (name, low, high, names) in fields]
        return cls(expression, *sets)

    def _day_matches(self, day: datetime) -> bool:
        # Python's weekday() is Monday=0; cron's is Sunday=0.
        return day.month in self.months and day.day in self.days and (day.weekday() + 1) % 7 in self.weekdays

    def _time_on(self, day: datetime, after: datetime | None) -> datetime | None:
        """The first matching time on ``day``, strictly after ``after`` when that is given.

        Skips whole hours and minutes before ``after``, so the search stays a few hundred steps.
        """
        for hour in sorted(self.hours):
            if after is not None and hour < after.hour:
                continue
            for minute in sorted(self.minutes):
                if after is not None and (hour, minute) < (after.hour, after.minute):
                    continue
                for second in sorted(self.seconds):
                    candidate = day.replace(hour=hour, minute=minute, second=second, microsecond=0)
                    if after is None or candidate > after:
                        return candidate
        return None

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (same tzinfo as ``moment``)."""
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        if self._day_matches(day):
            found = self._time_on(day, moment)
            if found is not None:
                return found
        limit = day + timedelta(days=366 * _SEARCH_YEARS)
        day += timedelta(days=1)
        while day < limit:
            if self._day_matches(day):
                found = self._time_on(day, None)
                if found is not None:
                    return found
            day += timedelta(days=1)
        raise DevHostError(f"schedule {self.expression!r} never fires")
