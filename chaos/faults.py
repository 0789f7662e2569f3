"""The fault schedule of a chaos run, drawn from the seed, and the coroutine that carries it out.

During the fault window:
- the proxies delay and drop requests and responses at the plan's rates (chaos/proxy.py);
- hosts are killed with SIGKILL (no shutdown, no message hand-back) and restarted a few seconds
  later on the same port;
- Azurite is stopped and started again (its data on disk survives), once;
- short blackouts refuse every storage request, as a network partition would;
- copies of job messages are sent to the jobs queue (duplicate deliveries), some visible at once,
  some later, when their job may long be finished.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from azure.storage.queue.aio import QueueClient

from chaos.hosts import HostFleet
from chaos.proxy import FaultSwitch

log = logging.getLogger("chaos.faults")


@dataclass(frozen=True)
class FaultEvent:
    at: float  # seconds into the window
    kind: str  # kill-host | restart-azurite | blackout | duplicate-messages
    duration: float = 0.0  # how long the host stays down, Azurite is down, the blackout lasts
    count: int = 0  # duplicate-messages: how many copies


def schedule(rng: random.Random, window: float, hosts: int) -> list[FaultEvent]:
    events: list[FaultEvent] = []
    at = rng.uniform(2.0, 6.0)
    while at < window - 4:
        events.append(FaultEvent(at, "kill-host", duration=rng.uniform(1.0, 5.0)))
        at += rng.uniform(5.0, 12.0) if hosts > 1 else rng.uniform(12.0, 20.0)
    events.append(FaultEvent(rng.uniform(0.35, 0.65) * window, "restart-azurite", duration=rng.uniform(1.0, 3.0)))
    for _ in range(2):
        events.append(FaultEvent(rng.uniform(0.1, 0.9) * window, "blackout", duration=rng.uniform(0.5, 2.0)))
    at = rng.uniform(1.0, 3.0)
    while at < window:
        events.append(FaultEvent(at, "duplicate-messages", count=rng.randint(1, 4)))
        at += rng.uniform(2.0, 5.0)
    return sorted(events, key=lambda e: e.at)


@dataclass
class FaultRunner:
    """Carries out a schedule against the fleet, Azurite (through ``restart_azurite``) and the proxies."""

    rng: random.Random
    fleet: HostFleet
    switch: FaultSwitch
    restart_azurite: Callable[[float], Awaitable[None]]
    jobs_queue: Callable[[], QueueClient]  # straight to Azurite, not through the proxy
    done: Counter[str] = field(default_factory=Counter)
    _restarts: set[asyncio.Task[None]] = field(default_factory=set)

    async def run(self, events: list[FaultEvent], started: float) -> None:
        loop = asyncio.get_running_loop()
        self.switch.active = True
        try:
            for event in events:
                await asyncio.sleep(max(0.0, started + event.at - loop.time()))
                try:
                    await self._apply(event)
                except Exception:
                    log.exception("fault %s failed", event.kind)
        finally:
            self.switch.active = False
            self.switch.blackout = False

    async def settle(self) -> None:
        """Wait for pending restarts, then bring every host that is down back up."""
        await asyncio.gather(*self._restarts, return_exceptions=True)
        for host in self.fleet.hosts:
            if not host.alive:
                host.start()
                await asyncio.to_thread(host.wait_until_up)

    async def _apply(self, event: FaultEvent) -> None:
        log.info("fault at %.1f s: %s", event.at, event.kind)
        if event.kind == "kill-host":
            self._kill_host(event.duration)
        elif event.kind == "restart-azurite":
            self.done["azurite-restart"] += 1
            await self.restart_azurite(event.duration)
        elif event.kind == "blackout":
            self.done["blackout"] += 1
            self.switch.blackout = True
            await asyncio.sleep(event.duration)
            self.switch.blackout = False
        elif event.kind == "duplicate-messages":
            await self._duplicate(event.count)

    def _kill_host(self, down: float) -> None:
        alive = [h for h in self.fleet.hosts if h.alive]
        if not alive or (len(self.fleet.hosts) > 1 and len(alive) < 2):
            return  # keep one host of a fleet up, so the API answers someone
        host = self.rng.choice(alive)
        host.kill()
        self.done["host-kill"] += 1
        log.info("killed host %s; back in %.1f s", host.index, down)

        async def restart() -> None:
            await asyncio.sleep(down)
            host.start()
            try:
                await asyncio.to_thread(host.wait_until_up)
            except RuntimeError:
                log.exception("host %s did not come back", host.index)

        task = asyncio.create_task(restart())
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _duplicate(self, count: int) -> None:
        """Copies of job messages that are visible now: some arrive at once, some up to 20 s later."""
        try:
            async with self.jobs_queue() as queue:
                peeked = await queue.peek_messages(max_messages=32)
                for message in self.rng.sample(list(peeked), min(count, len(peeked))):
                    later = self.rng.choice((0, 0, self.rng.randint(1, 20)))
                    await queue.send_message(message.content, visibility_timeout=later)
                    self.done["duplicate-message"] += 1
        except Exception as error:  # Azurite may be restarting
            log.info("no duplicates this time: %s", type(error).__name__)
