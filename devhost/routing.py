"""HTTP route templates in the ASP.NET style the Functions host uses.

Supports literal segments (case-insensitive), ``{name}``, constraints ``{name:int}``,
``{name:long}``, ``{name:guid}``, ``{name:alpha}``, ``{name:bool}``, optional ``{name?}``
(trailing segments only), a trailing catch-all ``{*rest}``, and several parameters in one segment
(``{name}.{ext}``). When several templates match a path, the most specific wins, as in ASP.NET:
literals beat constrained parameters, which beat plain, optional and catch-all ones.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from devhost.errors import DevHostError

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)
_PARAM = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _int_between(low: int, high: int) -> Callable[[str], bool]:
    def check(text: str) -> bool:
        return re.fullmatch(r"[+-]?\d+", text) is not None and low <= int(text) <= high

    return check


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


CONSTRAINTS: dict[str, Callable[[str], bool]] = {
    "int": _int_between(*_INT32),
    "long": _int_between(*_INT64),
    "guid": _is_guid,
    "alpha": lambda text: text.isascii() and text.isalpha(),
    "bool": lambda text: text.lower() in ("true", "false"),
}


@dataclass(frozen=True)
class Parameter:
    """One ``{...}`` in a template."""

    name: str
    constraints: tuple[str, ...] = ()
    optional: bool = False
    catch_all: bool = False

    def accepts(self, value: str) -> bool:
        return all(CONSTRAINTS[c](value) for c in self.constraints)


@dataclass(frozen=True)
class Segment:
    """One ``/``-separated part of a template: a literal, a parameter, or text mixed with parameters."""

    pattern: re.Pattern[str]
    parameters: tuple[Parameter, ...]
    rank: int  # 0 literal, 1 constrained, 2 plain, 3 optional, 4 catch-all

    @property
    def optional(self) -> bool:
        return len(self.parameters) == 1 and (self.parameters[0].optional or self.parameters[0].catch_all)

    @property
    def catch_all(self) -> Parameter | None:
        return self.parameters[0] if self.parameters and self.parameters[0].catch_all else None


def _parameter(body: str, template: str) -> Parameter:
    catch_all = body.startswith("*")
    body = body.lstrip("*")
    optional = body.endswith("?")
    body = body.rstrip("?")
    name, *constraints = body.split(":")
    if not _NAME.match(name):
        raise DevHostError(f"route {template!r}: invalid parameter name {name!r}")
    unknown = [c for c in constraints if c not in CONSTRAINTS]
    if unknown:
        raise DevHostError(f"route {template!r}: unsupported constraint(s) {unknown} (have {sorted(CONSTRAINTS)})")
    return Parameter(name, tuple(constraints), optional, catch_all)


def _segment(text: str, template: str) -> Segment:
    parameters: list[Parameter] = []
    pattern = ""
    position = 0
    for match in _PARAM.finditer(text):
        pattern += re.escape(text[position : match.start()])
        parameter = _parameter(match.group(1), template)
        parameters.append(parameter)
        pattern += f"(?P<{parameter.name}>.+)"  # greedy: ``{name}.{ext}`` splits at the last dot, as ASP.NET
        position = match.end()
    pattern += re.escape(text[position:])
    if "{" in _PARAM.sub("", text) or "}" in _PARAM.sub("", text):
        raise DevHostError(f"route {template!r}: unbalanced braces in {text!r}")
    if len(parameters) > 1 and any(p.optional or p.catch_all for p in parameters):
        raise DevHostError(f"route {template!r}: optional and catch-all parameters need a segment of their own")
    return Segment(re.compile(pattern, re.IGNORECASE | re.DOTALL), tuple(parameters), _rank(parameters))


def _rank(parameters: Sequence[Parameter]) -> int:
    if not parameters:
        return 0
    first = parameters[0]
    if first.catch_all:
        return 4
    if first.optional:
        return 3
    return 1 if all(p.constraints for p in parameters) else 2


@dataclass(frozen=True)
class RouteTemplate:
    """A compiled route template; ``match`` returns route parameters or None."""

    template: str
    segments: tuple[Segment, ...]

    @classmethod
    def parse(cls, template: str) -> RouteTemplate:
        parts = template.strip("/").split("/") if template.strip("/") else []
        if any(not p for p in parts):
            raise DevHostError(f"route {template!r}: empty segment")
        segments = tuple(_segment(p, template) for p in parts)
        names = [p.name.lower() for s in segments for p in s.parameters]
        if len(names) != len(set(names)):
            raise DevHostError(f"route {template!r}: a parameter name is used twice")
        for index, segment in enumerate(segments):
            rest = segments[index + 1 :]
            if segment.catch_all is not None and rest:
                raise DevHostError(f"route {template!r}: a catch-all parameter must be the last segment")
            if segment.optional and any(not s.optional for s in rest):
                raise DevHostError(f"route {template!r}: only trailing parameters can be optional")
        return cls(template, segments)

    @property
    def precedence(self) -> tuple[int, ...]:
        """Sort key: smaller is more specific (ASP.NET route precedence, simplified)."""
        return (*(s.rank for s in self.segments), 5)

    def match(self, path_segments: Sequence[str]) -> dict[str, str] | None:
        """Match already-split, percent-decoded path segments."""
        values: dict[str, str] = {}
        for index, segment in enumerate(self.segments):
            catch_all = segment.catch_all
            if catch_all is not None:
                rest = "/".join(path_segments[index:])
                if rest and not catch_all.accepts(rest):
                    return None
                values[catch_all.name] = rest
                return values
            if index >= len(path_segments):
                return values if segment.optional else None
            found = segment.pattern.fullmatch(path_segments[index])
            if found is None:
                return None
            for parameter in segment.parameters:
                value = found.group(parameter.name)
                if not parameter.accepts(value):
                    return None
                values[parameter.name] = value
        return values if len(path_segments) == len(self.segments) else None


def split_path(raw_path: str) -> list[str]:
    """Split a raw (percent-encoded) URL path into decoded segments, ignoring empty ones."""
    return [unquote(part) for part in raw_path.split("/") if part]
