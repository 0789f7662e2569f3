"""The printed tables: medians over the repetitions, paired ratios, and the targets with PASS/MISS."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from bench.crash import CrashResult
from bench.e2e import E2EResult, E2EResults
from bench.harness import MemoryResult, RunResult, median
from bench.inprocess import PHASES, Results

M = TypeVar("M")
Getter = Callable[[Any], float | None]


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if len(present) == len(values) and present else None


def paired_ratio(mine: Sequence[float | None], theirs: Sequence[float | None]) -> float | None:
    """Median over repetitions of mine/theirs within each repetition (the two ran back to back)."""
    return _median([a / b if a is not None and b else None for a, b in zip(mine, theirs, strict=True)])


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _format(header: Sequence[str], lines: Sequence[Sequence[str]], left: int, groups: int = 0) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths,
                                                                                               strict=True)))

    out = [fmt(header), "  ".join("-" * w for w in widths)]
    for i, row in enumerate(lines):
        out.append(fmt(row))
        if groups and i % groups == groups - 1 and i != len(lines) - 1:
            out.append("")
    return out


# ---- part floor ------------------------------------------------------------------------------

def _floor_columns(concurrency: int) -> list[tuple[str, int, Getter]]:
    c = concurrency
    return [
        (f"jobs/s c{c}", c, lambda r: r.throughput),
        (f"p50 ms c{c}", c, lambda r: r.percentile_ms(0.50)),
        (f"p95 ms c{c}", c, lambda r: r.percentile_ms(0.95)),
        ("p50 ms c1", 1, lambda r: r.percentile_ms(0.50)),
        ("p95 ms c1", 1, lambda r: r.percentile_ms(0.95)),
        ("calls/job", c, lambda r: r.calls_per_job),
        ("CPU ms/job", c, lambda r: r.cpu_ms_per_job),
        ("Azurite CPU ms/job", c, lambda r: r.storage_cpu_ms_per_job),
    ]


MEMORY_COLUMNS: list[tuple[str, Callable[[MemoryResult], float | None], bool]] = [
    ("peak KiB", lambda m: m.peak_bytes / 1024, True),
    ("peak KiB/1k jobs", lambda m: m.per_thousand(m.peak_bytes) / 1024, True),
    # Near zero on both sides unless something leaks: a ratio of two noise values says nothing.
    ("retained KiB/1k jobs", lambda m: m.per_thousand(m.retained_bytes) / 1024, False),
]


def floor_ratio(results: Results, concurrency: int, phase: str, get: Getter) -> float | None:
    app: list[RunResult] = results.speed[(concurrency, phase, "app")]  # type: ignore[index]
    floor: list[RunResult] = results.speed[(concurrency, phase, "floor")]  # type: ignore[index]
    return paired_ratio([get(r) for r in app], [get(r) for r in floor])


def floor_table(results: Results, concurrency: int) -> list[str]:
    columns = _floor_columns(concurrency)
    lines: list[list[str]] = []
    for phase in PHASES:
        for side in ("app", "floor"):
            lines.append([phase, side, *(_number(_median([get(r) for r in results.speed[(c, phase, side)]]))
                                         for _, c, get in columns)])
        lines.append([phase, "app/floor", *(_ratio(floor_ratio(results, c, phase, get)) for _, c, get in columns)])
    return _format(["phase", "side", *(name for name, _, _ in columns)], lines, 2, groups=3)


def memory_table(memory: Mapping[tuple[str, str], Sequence[MemoryResult]]) -> list[str]:
    lines: list[list[str]] = []
    for phase in PHASES:
        app, floor = memory[(phase, "app")], memory[(phase, "floor")]
        for side, runs in (("app", app), ("floor", floor)):
            lines.append([phase, side, *(_number(_median([get(r) for r in runs])) for _, get, _ in MEMORY_COLUMNS)])
        lines.append([phase, "app/floor", *(
            _ratio(paired_ratio([get(r) for r in app], [get(r) for r in floor])) if ratio else "-"
            for _, get, ratio in MEMORY_COLUMNS)])
    return _format(["phase", "side", *(name for name, _, _ in MEMORY_COLUMNS)], lines, 2, groups=3)


# ---- parts e2e and celery --------------------------------------------------------------------

def _e2e_columns(concurrency: int) -> list[tuple[str, int, Callable[[E2EResult], float | None]]]:
    c = concurrency
    return [
        (f"jobs/s c{c}", c, lambda r: r.throughput),
        (f"p50 ms c{c}", c, lambda r: r.percentile_ms(0.50)),
        (f"p95 ms c{c}", c, lambda r: r.percentile_ms(0.95)),
        ("p50 ms c1", 1, lambda r: r.percentile_ms(0.50)),
        ("p95 ms c1", 1, lambda r: r.percentile_ms(0.95)),
        ("CPU ms/job", c, lambda r: r.cpu_ms_per_job),
        ("worker", c, lambda r: r.worker_cpu_ms_per_job),
        ("client", c, lambda r: r.client_cpu_ms_per_job),
        ("Azurite CPU ms/job", c, lambda r: r.azurite_cpu_ms_per_job),
    ]


def e2e_ratio(results: E2EResults, concurrency: int, side: str, other: str,
              get: Callable[[E2EResult], float | None]) -> float | None:
    return paired_ratio([get(r) for r in results.speed[(concurrency, side)]],
                        [get(r) for r in results.speed[(concurrency, other)]])


def e2e_table(results: E2EResults, sides: Sequence[str], concurrency: int) -> list[str]:
    columns = _e2e_columns(concurrency)
    calls = ["queue", "table", "blob", "total"]
    lines: list[list[str]] = []
    for side in sides:
        counted = results.calls.get(side, {})
        lines.append([side, *(_number(_median([get(r) for r in results.speed[(c, side)]])) for _, c, get in columns),
                      *(_number(counted.get(k)) for k in calls)])
    for other in sides[1:]:
        counted_app, counted_other = results.calls.get("app", {}), results.calls.get(other, {})
        lines.append([f"app/{other}", *(_ratio(e2e_ratio(results, c, "app", other, get)) for _, c, get in columns),
                      *(_ratio(counted_app[k] / counted_other[k]) if counted_other.get(k) and k in counted_app
                        else "n/a" for k in calls)])
    header = ["side", *(name for name, _, _ in columns), *(f"{k} calls/job" for k in calls)]
    return _format(header, lines, 1)


def crash_table(crash: Sequence[CrashResult], bound: float) -> list[str]:
    lines = [[r.side, str(r.jobs), str(r.in_flight_at_kill), str(r.lost),
              "n/a" if r.recovered_after is None else f"{r.recovered_after:.1f} s"] for r in crash]
    return _format(["side", "jobs", "in flight at kill", f"lost (not terminal {bound:.0f} s after)",
                    "all terminal after"], lines, 1)


# ---- targets ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    what: str
    measured: float | None
    limit: float
    at_least: bool  # True: measured >= limit passes; False: measured <= limit passes
    unit: str = "x"

    def passed(self) -> bool | None:
        if self.measured is None:
            return None
        return self.measured >= self.limit if self.at_least else self.measured <= self.limit

    def row(self) -> list[str]:
        sign = ">=" if self.at_least else "<="
        digits = 3 if self.measured is not None and round(self.measured, 2) == round(self.limit, 2) else 2
        measured = "n/a" if self.measured is None else (
            f"{self.measured:.{digits}f}x" if self.unit == "x" else f"{self.measured:.0f}")
        limit = f"{self.limit:g}x" if self.unit == "x" else f"{self.limit:g}"
        verdict = {True: "PASS", False: "MISS", None: "n/a"}[self.passed()]
        return [self.what, f"{sign} {limit}", measured, verdict]


def targets(floor: Results | None, e2e: E2EResults | None, crash: Sequence[CrashResult], concurrency: int,
            e2e_concurrency: int) -> list[Target]:
    out: list[Target] = []
    if e2e is not None and (e2e_concurrency, "celery") in e2e.speed:
        c = e2e_concurrency

        def vs_celery(conc: int, get: Callable[[E2EResult], float | None]) -> float | None:
            return e2e_ratio(e2e, conc, "app", "celery", get)

        out += [
            Target(f"e2e throughput c{c}, app/Celery", vs_celery(c, lambda r: r.throughput), 1.3, True),
            Target(f"e2e CPU per job c{c}, app/Celery (aim 0.8x)", vs_celery(c, lambda r: r.cpu_ms_per_job), 1.0,
                   False),
            Target("e2e p50 latency c1, app/Celery", vs_celery(1, lambda r: r.percentile_ms(0.5)), 0.6, False),
            Target("e2e p95 latency c1, app/Celery", vs_celery(1, lambda r: r.percentile_ms(0.95)), 0.8, False),
        ]
    if floor is not None:
        c = concurrency
        out += [
            Target("submission p50 latency c1, app/floor", floor_ratio(floor, 1, "submit", lambda r:
                                                                       r.percentile_ms(0.5)), 1.25, False),
            Target(f"submission throughput c{c}, app/floor", floor_ratio(floor, c, "submit", lambda r: r.throughput),
                   0.6, True),
            Target(f"processing throughput c{c}, app/floor", floor_ratio(floor, c, "process",
                                                                         lambda r: r.throughput), 0.9, True),
        ]
    out += [Target("crash probe: app jobs lost", float(r.lost), 0, False, unit="jobs") for r in crash
            if r.side == "app"]
    return out


def targets_table(rows: Sequence[Target]) -> list[str]:
    return _format(["target", "limit", "measured", ""], [t.row() for t in rows], 1)
