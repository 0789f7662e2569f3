"""NCRONTAB schedules with seconds, as the Functions timer trigger reads them, computed by croniter.

Six fields: ``{second} {minute} {hour} {day} {month} {day-of-week}``. Each field takes ``*``,
numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, and comma lists; months and weekdays also
take three-letter names. Like NCrontab (and unlike Vixie cron), a day must match both the day and
the day-of-week field (croniter's ``day_or=False``). The search keeps the tzinfo it is given: the
caller picks the clock (UTC).

croniter reads more than NCRONTAB does, and a few forms differently, so an expression passes a
small NCRONTAB check first: exactly six fields (croniter also takes five, or seven with a year);
no ``L``, ``W``, ``#``, ``?``, ``H`` or ``@daily`` (croniter extensions the Functions host
refuses); values within the field's bounds (croniter also reads weekday 7 as Sunday); a range must not run backwards
(croniter wraps ``5-1`` around); and a range of one value means that value (croniter reads
``5-5`` as the whole field).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from croniter import (  # type: ignore[import-untyped]  # croniter ships no type information
    DAY_FIELD,
    HOUR_FIELD,
    MINUTE_FIELD,
    MONTH_FIELD,
    SECOND_FIELD,
    CroniterBadDateError,
    CroniterError,
    croniter,
)
from croniter.croniter import DOW_ALPHAS, DOW_FIELD, M_ALPHAS  # type: ignore[import-untyped]

from devhost.errors import DevHostError


@dataclass(frozen=True)
class _Field:
    """One NCRONTAB field: its name, its bounds, and where croniter keeps it (seconds last)."""

    name: str
    low: int
    high: int
    croniter_index: int
    names: dict[str, int]


_MONTH_NAMES = {str(name): int(number) for name, number in M_ALPHAS.items()}
_WEEKDAY_NAMES = {str(name): int(number) for name, number in DOW_ALPHAS.items()}
# The six fields in NCRONTAB order.
_FIELDS = (
    _Field("second", 0, 59, SECOND_FIELD, {}),
    _Field("minute", 0, 59, MINUTE_FIELD, {}),
    _Field("hour", 0, 23, HOUR_FIELD, {}),
    _Field("day", 1, 31, DAY_FIELD, {}),
    _Field("month", 1, 12, MONTH_FIELD, _MONTH_NAMES),
    _Field("day-of-week", 0, 6, DOW_FIELD, _WEEKDAY_NAMES),
)
_VALUE = r"(?:\d+|[a-z]{3})"
_ELEMENT = re.compile(rf"(?:\*|(?P<start>{_VALUE})(?:-(?P<end>{_VALUE}))?)(?:/(?P<step>\d+))?")


def _number(text: str, field: _Field) -> int:
    if text.isdigit():
        return int(text)
    if text in field.names:
        return field.names[text]
    raise DevHostError(f"invalid {field.name} value {text!r}")


def _element_for_croniter(element: str, field: _Field) -> str:
    """One comma-separated element, checked against NCRONTAB and spelled so croniter means the same."""
    match = _ELEMENT.fullmatch(element.lower())
    if match is None:
        raise DevHostError(f"invalid {field.name} {element!r}: NCRONTAB takes *, a-b, */n, a-b/n, lists and names")
    start, end = match["start"], match["end"]
    for text in (start, end):
        if text is not None and not field.low <= _number(text, field) <= field.high:
            raise DevHostError(f"{field.name} value {text} is outside {field.low}-{field.high}")
    if start is not None and end is not None:
        first, last = _number(start, field), _number(end, field)
        if first > last:
            raise DevHostError(f"invalid {field.name} range {element!r}: it runs backwards")
        if first == last:
            return start  # croniter would read a one-value range as the whole field
    return element


def _field_for_croniter(text: str, field: _Field) -> str:
    return ",".join(_element_for_croniter(element, field) for element in text.split(","))


def _expand(expression: str, expander: type[Any] = croniter) -> list[list[int | str]]:
    """croniter's expansion, indexed by croniter's field order; DevHostError for what it refuses."""
    try:
        expanded, _ = expander.expand(expression, second_at_beginning=True)
    except CroniterError as error:
        raise DevHostError(f"invalid schedule {expression!r}: {error}") from None
    return list(expanded)


def _values(expanded: list[int | str], low: int, high: int) -> frozenset[int]:
    if expanded == ["*"]:
        return frozenset(range(low, high + 1))
    return frozenset(int(value) for value in expanded)


def _for_croniter(expression: str) -> str:
    parts = expression.split()
    if len(parts) != len(_FIELDS):
        raise DevHostError(
            f"invalid schedule {expression!r}: expected 6 fields "
            "'{second} {minute} {hour} {day} {month} {day-of-week}'"
        )
    return " ".join(_field_for_croniter(part, field) for part, field in zip(parts, _FIELDS, strict=True))


def parse_field(text: str, low: int, high: int, field: str = "second") -> frozenset[int]:
    """Return the set of values one field allows, as croniter expands it within ``low``-``high``.

    ``field`` names the NCRONTAB field whose spelling applies (month and weekday names); the
    bounds given replace that field's own, so a field can be read against any range.
    """
    spec = next((candidate for candidate in _FIELDS if candidate.name == field), None)
    if spec is None:
        raise DevHostError(f"unknown field {field!r}")
    bounded = _Field(spec.name, low, high, spec.croniter_index, spec.names)
    ranges = list(croniter.RANGES)
    ranges[spec.croniter_index] = (low, high)
    expander = type("BoundedCroniter", (croniter,), {"RANGES": tuple(ranges)})
    parts = ["*"] * len(_FIELDS)
    parts[_FIELDS.index(spec)] = _field_for_croniter(text, bounded)
    return _values(_expand(" ".join(parts), expander)[spec.croniter_index], low, high)


@dataclass(frozen=True)
class CronSchedule:
    """A parsed six-field NCRONTAB expression (the allowed values of each field, for reading)."""

    expression: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    croniter_expression: str  # the same schedule as croniter is given it

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        normalized = _for_croniter(expression)
        expanded = _expand(normalized)
        second, minute, hour, day, month, weekday = (
            _values(expanded[field.croniter_index], field.low, field.high) for field in _FIELDS
        )
        return cls(expression, second, minute, hour, day, month, weekday, croniter_expression=normalized)

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (same tzinfo as ``moment``)."""
        try:
            search = croniter(self.croniter_expression, moment, day_or=False, second_at_beginning=True)
            found = search.get_next(datetime)
        except CroniterBadDateError:
            raise DevHostError(f"schedule {self.expression!r} never fires") from None
        assert isinstance(found, datetime)
        return found
