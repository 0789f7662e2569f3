"""``python -m chaos``: a bounded, seeded fault-injection run against devhost and Azurite.

1. Azurite with its data on disk (a temp folder), so a restart keeps it; a fault proxy in front
   of each of its three services; ``--hosts`` devhost processes on one set of queue and table
   names, talking to storage through the proxies, with short repair delays (chaos/hosts.py).
2. The seeded plan's subjects are uploaded; then, for ``--duration`` seconds, jobs are submitted
   while the faults of the seeded schedule happen (chaos/faults.py, chaos/proxy.py).
3. The faults stop, every host is brought back up, and the run waits (at most ``--settle``
   seconds) until every accepted job is terminal with its outcome events out.
4. The checker reads storage and prints one line; the exit status is 1 when any count is not 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from azure.storage.queue.aio import QueueClient

from chaos.checker import Checker, Findings
from chaos.faults import FaultRunner, schedule
from chaos.hosts import FAST_REPAIRS, MESSAGE_LEASE_SECONDS, HostFleet, connection_string, shared_names
from chaos.proxy import FaultProxy, FaultRates, FaultSwitch
from chaos.workload import Client, Plan, Workload, upload
from devhost.azurite import Azurite, start_azurite

log = logging.getLogger("chaos")


@dataclass(frozen=True)
class Options:
    seed: int = 1
    jobs: int = 120
    duration: float = 90.0
    hosts: int = 3
    settle: float = 240.0
    fault_rate: float = 1.0
    workdir: Path | None = None
    keep: bool = False


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=Options.seed, help="the plan's and the faults' seed (default 1)")
    parser.add_argument("--jobs", type=int, default=Options.jobs, help="jobs to submit (default 120)")
    parser.add_argument("--duration", type=float, default=Options.duration,
                        help="the fault window in seconds (default 90)")
    parser.add_argument("--hosts", type=int, default=Options.hosts, help="devhost processes (default 3)")
    parser.add_argument("--settle", type=float, default=Options.settle,
                        help="how long to wait after the faults for every job to finish (default 240 s)")
    parser.add_argument("--fault-rate", type=float, default=Options.fault_rate,
                        help="multiplies the proxy's fault probabilities (default 1)")
    parser.add_argument("--workdir", type=Path, help="keep Azurite's data and the hosts' logs here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder even when the run is clean")
    parser.add_argument("--verbose", action="store_true", help="log each fault and phase")
    return parser


class Storage:
    """Azurite on fixed ports with its data on disk, and the three proxies in front of it."""

    def __init__(self, workdir: Path, switch: FaultSwitch):
        self.location, self.log_path = workdir / "azurite", workdir / "azurite.log"
        self.switch = switch
        self.azurite: Azurite = start_azurite(location=self.location, log_path=self.log_path)
        self.proxies = [FaultProxy(name, port, switch) for name, port in
                        (("blob", self.azurite.blob_port), ("queue", self.azurite.queue_port),
                         ("table", self.azurite.table_port))]

    async def start_proxies(self) -> None:
        for proxy in self.proxies:
            await proxy.start()

    @property
    def direct(self) -> str:
        """Straight to Azurite: the workload's uploads, the duplicate messages, the checker."""
        return self.azurite.connection_string

    @property
    def proxied(self) -> str:
        """Through the fault proxies: what the hosts use."""
        return connection_string(*(proxy.port for proxy in self.proxies))

    async def restart(self, down: float) -> None:
        """Stop Azurite (SIGTERM: it saves its data), wait ``down`` seconds, start it on the same ports."""
        old = self.azurite
        await asyncio.to_thread(old.stop)
        for proxy in self.proxies:
            proxy.reset()
        log.info("Azurite stopped; back in %.1f s", down)
        await asyncio.sleep(down)
        self.azurite = await asyncio.to_thread(
            start_azurite, blob_port=old.blob_port, queue_port=old.queue_port, table_port=old.table_port,
            location=self.location, log_path=self.log_path)

    async def close(self) -> None:
        for proxy in self.proxies:
            await proxy.close()
        await asyncio.to_thread(self.azurite.stop)


async def run(options: Options) -> Findings:
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(options.seed)
    switch = FaultSwitch(random.Random(rng.random()), FaultRates().scaled(options.fault_rate))
    storage = Storage(workdir, switch)
    try:
        await storage.start_proxies()
        names = shared_names(f"c{uuid.uuid4().hex[:10]}")
        fleet = HostFleet(storage.proxied, names, workdir, options.hosts, FAST_REPAIRS, MESSAGE_LEASE_SECONDS)
        try:
            began = time.monotonic()
            await asyncio.to_thread(fleet.start)
            _phase(f"{options.hosts} hosts up in {time.monotonic() - began:.1f} s; logs in {workdir}")
            findings = await _exercise(options, rng, storage=storage, fleet=fleet, names=names, switch=switch,
                                       workdir=workdir)
        finally:
            await asyncio.to_thread(fleet.stop)
    finally:
        await storage.close()
    if findings.clean and not options.keep and options.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        _phase(f"report, Azurite's data and the hosts' logs kept in {workdir}")
    return findings


async def _exercise(options: Options, rng: random.Random, *, storage: Storage, fleet: HostFleet,
                    names: dict[str, str], switch: FaultSwitch, workdir: Path) -> Findings:
    plan = Plan(options.seed, options.jobs, options.duration)
    await asyncio.gather(*(upload(storage.direct, names, spec.blob) for spec in plan.specs if spec.blob))
    token = await asyncio.to_thread(fleet.token, "Jobs.Submit", "Jobs.Read")
    faults = FaultRunner(random.Random(rng.random()), fleet, switch, storage.restart,
                         lambda: QueueClient.from_connection_string(storage.direct, names["JOBS_QUEUE"]))
    events = schedule(random.Random(rng.random()), options.duration, options.hosts)
    loop = asyncio.get_running_loop()
    async with Client(fleet.base_urls, token, random.Random(rng.random())) as client:
        workload = Workload(plan, client, lambda blob: upload(storage.direct, names, blob))
        started = loop.time()
        submitting = asyncio.create_task(workload.run(started))
        await faults.run(events, started)
        await faults.settle()
        _phase(f"fault window over after {loop.time() - started:.0f} s ({_faults(switch, faults)} faults); "
               "settling")
        settle_deadline = loop.time() + options.settle
        checker = Checker(storage.direct, names, plan)
        await _settle(checker, submitting, settle_deadline)
        _phase(f"settled {loop.time() - started:.0f} s after the start; checking")
    findings = await checker.check(_faults(switch, faults))
    findings.info.update({f"fault {k}": v for k, v in (switch.injected + faults.done).items()})
    findings.info["client retries"] = client.retried
    (workdir / "report.json").write_text(json.dumps({
        "options": {**options.__dict__, "workdir": str(workdir)}, "line": findings.line(),
        "problems": findings.problems, "info": dict(findings.info),
        "jobs": [{"label": s.label, "jobId": s.job_id, "accepted": s.accepted, "expected": s.expected,
                  "cancelAnswer": s.cancel_answer, "redriven": s.redriven, "notes": s.notes} for s in plan.specs],
    }, indent=2, default=str))
    return findings


async def _settle(checker: Checker, submitting: asyncio.Task[None], deadline: float) -> None:
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(asyncio.shield(submitting), max(1.0, deadline - loop.time()))
    except TimeoutError:
        submitting.cancel()
    while loop.time() < deadline:
        await checker.read_events()
        if not checker.unsettled(await checker.records()):
            return
        await asyncio.sleep(2.0)


def _faults(switch: FaultSwitch, faults: FaultRunner) -> int:
    return sum(switch.injected.values()) + sum(faults.done.values())


def _phase(text: str) -> None:
    print(f"chaos: {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.ERROR)
    options = Options(seed=args.seed, jobs=args.jobs, duration=args.duration, hosts=args.hosts, settle=args.settle,
                      fault_rate=args.fault_rate, workdir=args.workdir, keep=args.keep)
    began = time.monotonic()
    findings = asyncio.run(run(options))
    for problem in findings.problems[:50]:
        print(f"chaos: {problem}", file=sys.stderr)
    print(f"chaos: {dict(sorted(findings.info.items()))}; {time.monotonic() - began:.0f} s in all", file=sys.stderr)
    print(findings.line(), flush=True)
    return 0 if findings.clean else 1
