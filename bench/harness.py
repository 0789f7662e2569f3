"""Measuring one run: bounded concurrency, per-job latency, storage calls, CPU and memory.

Both sides of every comparison go through ``run_bounded`` with the same concurrency, the same
(shared) storage clients and the same Azurite, so the only difference is the code under test.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from azure.core.pipeline import PipelineRequest

T = TypeVar("T")
_STARTED = time.perf_counter()


def progress(text: str) -> None:
    """A progress line on stderr (the report goes to stdout)."""
    print(f"bench [{time.perf_counter() - _STARTED:5.0f} s] {text}", file=sys.stderr, flush=True)


class CallCounter:
    """azure-core's ``raw_request_hook``: sees every HTTP request the storage clients send.

    Only an integer, unlike tests.support.RequestLog's list, so counting costs no memory per call
    and does not blur the memory comparison.
    """

    def __init__(self) -> None:
        self.count = 0

    def hook(self, request: PipelineRequest[Any]) -> None:
        self.count += 1


def process_cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) a process has used, from /proc (Linux); None elsewhere."""
    path = Path(f"/proc/{pid}/stat")
    try:
        text = path.read_text()
    except OSError:
        return None
    # Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    fields = text.rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    return (int(fields[11]) + int(fields[12])) / tick


class ProcessCpu:
    """CPU seconds (user + system) another process has used, from /proc (Linux); None elsewhere."""

    def __init__(self, pid: int | None):
        self.pid = pid

    def seconds(self) -> float | None:
        return None if self.pid is None else process_cpu_seconds(self.pid)


@dataclass(frozen=True)
class RunResult:
    jobs: int
    seconds: float
    latencies: list[float]  # seconds, one per job
    calls: int
    cpu_seconds: float  # this process (the code under test plus the SDK)
    storage_cpu_seconds: float | None  # Azurite's process, when it can be read

    @property
    def throughput(self) -> float:
        return self.jobs / self.seconds

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
        return ordered[index] * 1000

    @property
    def calls_per_job(self) -> float:
        return self.calls / self.jobs

    @property
    def cpu_ms_per_job(self) -> float:
        return self.cpu_seconds * 1000 / self.jobs

    @property
    def storage_cpu_ms_per_job(self) -> float | None:
        return None if self.storage_cpu_seconds is None else self.storage_cpu_seconds * 1000 / self.jobs


async def run_bounded(
    items: Sequence[T], operation: Callable[[T], Awaitable[object]], concurrency: int,
    counter: CallCounter, storage_cpu: ProcessCpu,
) -> RunResult:
    """Run ``operation`` over ``items`` with at most ``concurrency`` in flight; time each call."""
    pending = iter(items)
    latencies: list[float] = []

    async def worker() -> None:
        for item in pending:  # one shared iterator: each item is taken by exactly one worker
            started = time.perf_counter()
            await operation(item)
            latencies.append(time.perf_counter() - started)

    gc.collect()
    calls, cpu, storage = counter.count, time.process_time(), storage_cpu.seconds()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    storage_after = storage_cpu.seconds()
    return RunResult(
        jobs=len(items), seconds=seconds, latencies=latencies, calls=counter.count - calls,
        cpu_seconds=time.process_time() - cpu,
        storage_cpu_seconds=None if storage is None or storage_after is None else storage_after - storage,
    )


@dataclass(frozen=True)
class MemoryResult:
    jobs: int
    peak_bytes: int  # highest traced Python heap during the run, above what it held at the start
    retained_bytes: int  # still held after the run and a full collection (what a leak would show)

    def per_thousand(self, value: int) -> float:
        return value * 1000 / self.jobs


async def measure_memory(
    items: Sequence[T], operation: Callable[[T], Awaitable[object]], concurrency: int,
    *, counter: CallCounter, storage_cpu: ProcessCpu, after: Callable[[], None] | None = None,
) -> MemoryResult:
    """The run's Python heap growth by tracemalloc (which must be tracing already).

    ``after`` drops what the harness itself keeps per job (not the code under test) before the
    retained size is read.
    """
    gc.collect()
    tracemalloc.reset_peak()
    start, _ = tracemalloc.get_traced_memory()
    result = await run_bounded(items, operation, concurrency, counter, storage_cpu)
    _, peak = tracemalloc.get_traced_memory()
    del result
    if after is not None:
        after()
    gc.collect()
    end, _ = tracemalloc.get_traced_memory()
    return MemoryResult(len(items), peak - start, max(0, end - start))


def median(values: Sequence[float]) -> float:
    return statistics.median(values)
