"""Route templates: parameters, constraints, optional and catch-all segments, precedence."""

from __future__ import annotations

import pytest

from devhost.errors import DevHostError
from devhost.routing import RouteTemplate, split_path

GUID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def match(template: str, path: str) -> dict[str, str] | None:
    return RouteTemplate.parse(template).match(split_path(path))


def test_literal_and_parameters() -> None:
    assert match("jobs/{jobId}/status", "/jobs/abc/status") == {"jobId": "abc"}
    assert match("jobs/{jobId}/status", "/JOBS/abc/Status") == {"jobId": "abc"}  # literals ignore case
    assert match("jobs/{jobId}/status", "/jobs/abc") is None
    assert match("jobs/{jobId}/status", "/jobs/abc/status/more") is None
    assert match("jobs", "/jobs/") == {}


def test_percent_decoding() -> None:
    assert match("hello/{name}", "/hello/a%20b") == {"name": "a b"}


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("items/{id:int}", "/items/42", {"id": "42"}),
        ("items/{id:int}", "/items/-7", {"id": "-7"}),
        ("items/{id:int}", "/items/x1", None),
        ("items/{id:int}", "/items/99999999999", None),  # outside int32
        ("items/{id:long}", "/items/99999999999", {"id": "99999999999"}),
        ("jobs/{id:guid}", f"/jobs/{GUID}", {"id": GUID}),
        ("jobs/{id:guid}", "/jobs/not-a-guid", None),
        ("names/{n:alpha}", "/names/Alice", {"n": "Alice"}),
        ("names/{n:alpha}", "/names/al1ce", None),
        ("flags/{b:bool}", "/flags/True", {"b": "True"}),
        ("flags/{b:bool}", "/flags/yes", None),
    ],
)
def test_constraints(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert match(template, path) == expected


def test_optional_and_catch_all() -> None:
    assert match("opt/{value?}", "/opt") == {}
    assert match("opt/{value?}", "/opt/x") == {"value": "x"}
    assert match("files/{*path}", "/files/a/b/c.txt") == {"path": "a/b/c.txt"}
    assert match("files/{*path}", "/files") == {"path": ""}
    assert match("files/{name}.{ext}", "/files/report.v2.pdf") == {"name": "report.v2", "ext": "pdf"}


def test_precedence_prefers_literals_then_constraints() -> None:
    templates = [RouteTemplate.parse(t) for t in ("{*any}", "jobs/{id}", "jobs/{id:int}", "jobs/latest")]
    ordered = [t.template for t in sorted(templates, key=lambda t: t.precedence)]
    assert ordered == ["jobs/latest", "jobs/{id:int}", "jobs/{id}", "{*any}"]


@pytest.mark.parametrize(
    "template",
    ["a/{id:nope}", "a/{*rest}/b", "a/{x?}/b", "a/{x}/{x}", "a//b", "a/{x", "a/{1x}", "{a?}.{b}"],
)
def test_invalid_templates(template: str) -> None:
    with pytest.raises(DevHostError):
        RouteTemplate.parse(template)
