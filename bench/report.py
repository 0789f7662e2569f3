"""The printed table: medians over the repetitions, and app/baseline ratios of paired runs."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Literal, TypeVar

from bench.harness import MemoryResult, RunResult, median

M = TypeVar("M")
Side = Literal["app", "baseline"]
Phase = Literal["submit", "process"]
SIDES: tuple[Side, Side] = ("app", "baseline")
PHASES: tuple[Phase, Phase] = ("submit", "process")

# (heading, value of one run, whether an app/baseline ratio means anything)
SPEED_COLUMNS: list[tuple[str, Callable[[RunResult], float | None], bool]] = [
    ("jobs/s", lambda r: r.throughput, True),
    ("p50 ms", lambda r: r.percentile_ms(0.50), True),
    ("p95 ms", lambda r: r.percentile_ms(0.95), True),
    ("calls/job", lambda r: r.calls_per_job, True),
    ("CPU ms/job", lambda r: r.cpu_ms_per_job, True),
    ("Azurite CPU ms/job", lambda r: r.storage_cpu_ms_per_job, True),
]
MEMORY_COLUMNS: list[tuple[str, Callable[[MemoryResult], float | None], bool]] = [
    ("peak KiB", lambda m: m.peak_bytes / 1024, True),
    ("peak KiB/1k jobs", lambda m: m.per_thousand(m.peak_bytes) / 1024, True),
    # Near zero on both sides unless something leaks: a ratio of two noise values says nothing.
    ("retained KiB/1k jobs", lambda m: m.per_thousand(m.retained_bytes) / 1024, False),
]


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return median(present) if len(present) == len(values) and present else None


def _paired_ratio(app: Sequence[float | None], base: Sequence[float | None]) -> float | None:
    """Median over repetitions of app/baseline within each repetition (both ran back to back)."""
    ratios = [a / b if a is not None and b else None for a, b in zip(app, base, strict=True)]
    return _median(ratios)


def _number(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if abs(value) < 100 else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"


def _table(
    rows: Mapping[tuple[Phase, Side], Sequence[M]], columns: Sequence[tuple[str, Callable[[M], float | None], bool]],
    phases: Sequence[Phase],
) -> list[str]:
    header = ["phase", "side", *(name for name, _, _ in columns)]
    lines: list[list[str]] = []
    for phase in phases:
        app, base = rows[(phase, "app")], rows[(phase, "baseline")]
        for side, runs in (("app", app), ("baseline", base)):
            lines.append([phase, side, *(_number(_median([get(r) for r in runs])) for _, get, _ in columns)])
        lines.append([phase, "app/baseline", *(
            _ratio(_paired_ratio([get(r) for r in app], [get(r) for r in base])) if ratio else "-"
            for _, get, ratio in columns
        )])
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def fmt(row: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths,
                                                                                                       strict=True)))

    out = [fmt(header), "  ".join("-" * w for w in widths)]
    for i, row in enumerate(lines):
        out.append(fmt(row))
        if i % 3 == 2 and i != len(lines) - 1:
            out.append("")
    return out


def print_report(
    speed: Mapping[tuple[Phase, Side], Sequence[RunResult]],
    memory: Mapping[tuple[Phase, Side], Sequence[MemoryResult]],
    *, jobs: int, memory_jobs: int, concurrency: int, repeats: int, environment: str,
) -> None:
    phases = PHASES
    print()
    print(environment)
    print(f"Speed: {jobs} jobs per side, {concurrency} in flight, median of {repeats} runs "
          "(warm-up excluded; ratio = median of per-run app/baseline)")
    print("\n".join(_table(speed, SPEED_COLUMNS, phases)))
    if memory:
        print()
        print(f"Memory: Python heap growth (tracemalloc) during a run of {memory_jobs} jobs per side, {concurrency} in "
              f"flight, and per 1,000 jobs; median of {repeats} runs")
        print("\n".join(_table(memory, MEMORY_COLUMNS, phases)))
    print()
    print("ratio > 1: the app takes more (time, calls, CPU, memory); for jobs/s, < 1 means the app is slower.")
