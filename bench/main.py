"""``python -m bench``: the whole story in one run, on one Azurite that it starts and stops.

Parts (``--only``, default all, run in this order):
  floor   the app's submit and process code vs the floor, in this process (bench/inprocess.py)
  e2e     whole jobs through devhost vs the floor's worker process (bench/e2e.py)
  celery  whole jobs through devhost vs a Celery 5.7 worker on the same Azurite (bench/e2e.py)
  crash   kill -9 a worker with jobs in flight, app and Celery (bench/crash.py)
See bench/README.md for what each number means.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.crash import CrashOptions, CrashResult, run_crash
from bench.e2e import E2EOptions, E2EResults, Ports, run_e2e
from bench.harness import progress
from bench.inprocess import InProcessBench, Options, Results
from bench.report import crash_table, e2e_table, floor_table, memory_table, targets, targets_table
from devhost.azurite import start_azurite

PARTS = ("floor", "e2e", "celery", "crash")


@dataclass(frozen=True)
class Plan:
    parts: tuple[str, ...]
    floor: Options
    e2e: E2EOptions
    crash: CrashOptions
    keep_logs: bool


@dataclass
class Outcome:
    floor: Results | None = None
    e2e: E2EResults | None = None
    crash: list[CrashResult] | None = None


def parse_args(argv: Sequence[str] | None) -> Plan:
    p = argparse.ArgumentParser(prog="python -m bench", description=(__doc__ or "").splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {','.join(PARTS)}")
    p.add_argument("--repeats", type=int, default=3, help="repetitions of each measured part; medians reported")
    p.add_argument("--concurrency", type=int, default=16, help="jobs in flight for the throughput figures")
    p.add_argument("--poll", type=float, default=0.1,
                   help="queue polling interval of every side, seconds (must match bench/host.json's "
                        "maxPollingInterval, which devhost and the floor worker read)")
    f = p.add_argument_group("part floor (in-process)")
    f.add_argument("--jobs", type=int, default=300, help="jobs per side per repetition at --concurrency")
    f.add_argument("--latency-jobs", type=int, default=60, help="jobs per side per repetition at concurrency 1")
    f.add_argument("--warmup", type=int, default=80, help="jobs per side in the unreported warm-up")
    f.add_argument("--memory-jobs", type=int, default=48,
                   help="jobs per side per traced memory repetition (0 skips them)")
    f.add_argument("--principals", type=int, default=0,
                   help="callers submitting the jobs; 0 = one per job (keep it at least jobs/100: the default "
                        "quota is 100 jobs in flight per caller)")
    e = p.add_argument_group("parts e2e and celery")
    e.add_argument("--e2e-jobs", type=int, default=160, help="jobs per side per repetition at --concurrency")
    e.add_argument("--e2e-latency-jobs", type=int, default=30, help="jobs per side per repetition at 1")
    e.add_argument("--e2e-warmup", type=int, default=16, help="unmeasured jobs before each side's turn")
    e.add_argument("--calls-jobs", type=int, default=64,
                   help="jobs per side in the calls pass through the counting relay (0 skips it)")
    c = p.add_argument_group("part crash")
    c.add_argument("--crash-jobs", type=int, default=12, help="slow jobs in flight when the worker is killed")
    c.add_argument("--crash-seconds", type=float, default=4.0, help="how long each slow job runs")
    c.add_argument("--crash-bound", type=float, default=40.0, help="a job not terminal this long after the kill "
                                                                  "is lost")
    p.add_argument("--keep-logs", action="store_true", help="keep the worker logs (their folder is printed)")
    a = p.parse_args(argv)
    parts = tuple(x.strip() for x in a.only.split(",") if x.strip())
    unknown = sorted(set(parts) - set(PARTS))
    if unknown or not parts:
        p.error(f"--only takes parts of {','.join(PARTS)}, not {','.join(unknown) or 'nothing'}")
    if min(a.jobs, a.latency_jobs, a.concurrency, a.repeats, a.warmup, a.e2e_jobs, a.e2e_latency_jobs,
           a.crash_jobs) < 1 or min(a.memory_jobs, a.calls_jobs, a.e2e_warmup) < 0:
        p.error("job counts, --concurrency and --repeats must be at least 1 (--memory-jobs, --calls-jobs and "
                "--e2e-warmup at least 0)")
    sides = ("app", *(s for s in ("floor", "celery") if (s if s == "celery" else "e2e") in parts))
    return Plan(
        parts=tuple(x for x in PARTS if x in parts),
        floor=Options(a.jobs, a.latency_jobs, a.concurrency, a.repeats, a.warmup, a.principals, a.memory_jobs),
        e2e=E2EOptions(a.e2e_jobs, a.e2e_latency_jobs, a.concurrency, a.repeats, a.e2e_warmup, a.calls_jobs,
                       a.poll, sides),
        crash=CrashOptions(a.crash_jobs, a.crash_seconds, a.crash_bound, a.poll, ("app", "celery")),
        keep_logs=a.keep_logs,
    )


async def _run(plan: Plan, workdir: Path) -> Outcome:
    outcome = Outcome()
    azurite = start_azurite(log_path=workdir / "azurite.log")
    try:
        pid = azurite.process.pid if azurite.process else None
        ports = Ports(azurite.blob_port, azurite.queue_port, azurite.table_port)
        if "floor" in plan.parts:
            bench = InProcessBench(azurite.connection_string, pid, plan.floor)
            try:
                outcome.floor = await bench.run()
            finally:
                await bench.close()
        if "e2e" in plan.parts or "celery" in plan.parts:
            outcome.e2e = await run_e2e(ports, pid, workdir, plan.e2e)
        if "crash" in plan.parts:
            outcome.crash = await run_crash(ports, workdir, plan.crash)
    finally:
        azurite.stop()
    return outcome


def _load() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "n/a"


def report(plan: Plan, outcome: Outcome, load_before: str, seconds: float) -> None:
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    print()
    print(f"{now}; Python {platform.python_version()}, {os.cpu_count()} CPUs shared by every process; load average "
          f"{load_before} before, {_load()} after; {seconds:.0f} s. Ratios pair runs made back to back.")
    f, e = plan.floor, plan.e2e
    if outcome.floor is not None:
        print()
        print(f"1. app vs floor, in-process: {f.jobs} jobs per side at {f.concurrency} in flight and {f.latency_jobs} "
              f"at 1, median of {f.repeats} (process = receive + handle + delete on both sides)")
        print("\n".join(floor_table(outcome.floor, f.concurrency)))
        for anomaly in outcome.floor.anomalies:
            print(f"   note: {anomaly}")
        if outcome.floor.memory:
            print()
            print(f"   memory: Python heap growth (tracemalloc), {f.memory_jobs} jobs per side, {f.concurrency} in "
                  f"flight, median of {f.repeats}")
            print("\n".join(memory_table(outcome.floor.memory)))  # type: ignore[arg-type]
    if outcome.e2e is not None:
        print()
        print(f"2./3. end to end, worker processes: {e.jobs} jobs per side at {e.concurrency} in flight and "
              f"{e.latency_jobs} at 1, median of {e.repeats}; every side polls every {e.poll * 1000:.0f} ms; "
              f"CPU = worker + client processes; calls from a separate pass of {e.calls_jobs} jobs per side")
        print("\n".join(e2e_table(outcome.e2e, e.sides, e.concurrency)))
        if outcome.e2e.unavailable:
            print(f"   note: {outcome.e2e.unavailable} app submission(s) answered 503 STORAGE_UNAVAILABLE (the API "
                  "path's 1.2 s per-try deadline) and were sent again, as a caller would")
    if outcome.crash is not None:
        c = plan.crash
        print()
        print(f"4. crash probe: {c.jobs} jobs of {c.seconds:.0f} s, worker killed (SIGKILL) while they run, "
              "a new worker started")
        print("\n".join(crash_table(outcome.crash, c.bound)))
    rows = targets(outcome.floor, outcome.e2e, outcome.crash or [], f.concurrency, e.concurrency)
    if rows:
        print()
        print("targets (issue 8): ratio = app / other side")
        print("\n".join(targets_table(rows)))
    print()
    print("ratio > 1: the app takes more (time, calls, CPU); for jobs/s, > 1 means the app is faster.")


def main(argv: Sequence[str] | None = None) -> int:
    plan = parse_args(argv)
    load_before = _load()
    started = time.perf_counter()
    folder = tempfile.mkdtemp(prefix="bench-")
    workdir = Path(folder)
    try:
        outcome = asyncio.run(_run(plan, workdir))
    finally:
        if plan.keep_logs:
            progress(f"logs kept in {workdir}")
        else:
            import shutil  # noqa: PLC0415

            shutil.rmtree(workdir, ignore_errors=True)
    progress(f"done in {time.perf_counter() - started:.0f} s")
    report(plan, outcome, load_before, time.perf_counter() - started)
    return 0
