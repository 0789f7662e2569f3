"""DevHost: the local Functions host, wiring settings, indexing, HTTP, queue listeners and timers.

Everything runs on one asyncio event loop, as in the Python worker: the HTTP server, the queue
listeners, the timers and ``async def`` functions; sync functions go to a thread pool. ``stop()``
stops polling and timers first, lets in-flight invocations finish (bounded by
``shutdown_timeout``, 3 s, for the whole stop; HTTP requests get 1 s more), hands the messages
of unfinished invocations back (visible at once, not after their 10-minute lease), then closes
the HTTP server and storage clients.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from devhost.azurite import PROJECT_ROOT
from devhost.errors import DevHostError
from devhost.functions import QUEUE_TRIGGER, TIMER_TRIGGER, FunctionSpec, build_specs
from devhost.hostconfig import HostConfig, load_host_config
from devhost.http_server import HttpDispatcher, build_application
from devhost.invoker import Invoker
from devhost.issuer import DevIssuer, default_key_dir
from devhost.loader import import_app_module, load_functions
from devhost.outputs import QueueOutputs
from devhost.queue_clients import QueueClients
from devhost.queue_listener import QueueListener
from devhost.queue_messages import MessageProcessor, poison_queue_name
from devhost.settings import apply_settings, read_settings_file, remove_settings, storage_connection_string
from devhost.timers import TimerRunner

log = logging.getLogger("devhost")
HOST = "127.0.0.1"
APP_SHUTDOWN_SECONDS = 1.0


class DevHost:
    """Hosts one function app; use ``async with DevHost(...)`` or ``start()``/``stop()``."""

    def __init__(
        self,
        app_module: str = "function_app",
        *,
        project_dir: Path = PROJECT_ROOT,
        port: int = 7071,
        message_lease: float = 600.0,
        settings_file: Path | None = None,
        shutdown_timeout: float = 3.0,
    ) -> None:
        if message_lease < 1:
            raise ValueError("message_lease must be at least 1 second (queue visibility is in whole seconds)")
        self.app_module = app_module
        self.project_dir = Path(project_dir)
        self.settings_file = settings_file or self.project_dir / "local.settings.json"
        self.message_lease = message_lease
        self.shutdown_timeout = shutdown_timeout
        self._port = port
        self._config = HostConfig()
        self._specs: list[FunctionSpec] = []
        self._added_settings: dict[str, str] = {}
        self._clients = QueueClients()
        self._executor: ThreadPoolExecutor | None = None
        self._runner: web.AppRunner | None = None
        self._listeners: list[QueueListener] = []
        self._timers: list[TimerRunner] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._issuer: DevIssuer | None = None
        self._issuer_lock = asyncio.Lock()
        self._started = False

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``; with port 0, the real port once started."""
        return f"http://{HOST}:{self._port}"

    @property
    def functions(self) -> list[FunctionSpec]:
        """The indexed functions (empty before ``start()``)."""
        return list(self._specs)

    @property
    def config(self) -> HostConfig:
        return self._config

    async def __aenter__(self) -> DevHost:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Load settings, index the app, bind HTTP and start listeners and timers."""
        if self._started:
            raise RuntimeError("DevHost already started")
        self._started = True
        try:
            await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> None:
        self._added_settings = apply_settings(read_settings_file(self.settings_file))
        self._config = load_host_config(self.project_dir)
        self._specs = build_specs(load_functions(self.app_module, self.project_dir))
        threads = os.environ.get("PYTHON_THREADPOOL_THREAD_COUNT")
        self._executor = ThreadPoolExecutor(max_workers=int(threads) if threads else None, thread_name_prefix="devhost")
        outputs = QueueOutputs(self._specs, self._clients, self._config.queues.message_encoding)
        invoker = Invoker(
            executor=self._executor,
            function_timeout=self._config.function_timeout,
            function_directory=str(self.project_dir),
            flush=outputs.flush,
        )
        listeners = {s.name: self._listener(s, invoker) for s in self._specs if s.trigger_type == QUEUE_TRIGGER}
        timers = {s.name: TimerRunner(s, invoker) for s in self._specs if s.trigger_type == TIMER_TRIGGER}
        await self._start_http(invoker)
        self._listeners, self._timers = list(listeners.values()), list(timers.values())
        for name, listener in listeners.items():
            self._spawn(listener.run(), f"devhost-queue-listener:{name}")
        for name, timer in timers.items():
            self._spawn(timer.run(), f"devhost-timer:{name}")
        log.info("DevHost started on %s with %d function(s)", self.base_url, len(self._specs))

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        task.add_done_callback(_report_crash)
        self._tasks.append(task)

    def _listener(self, spec: FunctionSpec, invoker: Invoker) -> QueueListener:
        assert spec.queue_name is not None
        connection = storage_connection_string(spec.connection)
        client = self._clients.get(connection, spec.queue_name)
        poison = poison_queue_name(spec.queue_name)
        processor = MessageProcessor(
            spec,
            client=client,
            poison_client=self._clients.get(connection, poison) if poison else None,
            options=self._config.queues,
            lease=self.message_lease,
            invoker=invoker,
        )
        return QueueListener(client, processor, self._config.queues, self.message_lease)

    async def _start_http(self, invoker: Invoker) -> None:
        dispatcher = HttpDispatcher(self._specs, self._config.route_prefix, invoker)
        self._runner = web.AppRunner(build_application(dispatcher, self._jwks),
                                    shutdown_timeout=min(1.0, self.shutdown_timeout))
        await self._runner.setup()
        site = web.TCPSite(self._runner, HOST, self._port)
        try:
            await site.start()
        except OSError as error:
            raise DevHostError(f"cannot listen on {HOST}:{self._port}: {error}") from error
        addresses: list[Any] = list(self._runner.addresses)
        self._port = int(addresses[0][1])

    async def _jwks(self) -> dict[str, Any]:
        """The issuer's JWKS; the key is loaded (or generated) on first use, off the event loop, in a
        thread of its own: not the default pool's, where the app's token validations wait for this
        very response (all of them, once as many arrive at once as the pool has threads)."""
        async with self._issuer_lock:
            if self._issuer is None:
                with ThreadPoolExecutor(1, thread_name_prefix="devhost-issuer") as loader:
                    self._issuer = await asyncio.get_running_loop().run_in_executor(
                        loader, DevIssuer, default_key_dir(self.project_dir))
        return self._issuer.jwks()

    async def stop(self) -> None:
        """Stop polling and timers, let in-flight work finish (all of it within ``shutdown_timeout``),
        hand back the messages of what did not finish, close everything."""
        deadline = asyncio.get_running_loop().time() + self.shutdown_timeout
        for listener in self._listeners:
            listener.stop()
        for timer in self._timers:
            timer.stop()
        await self._finish_tasks(deadline)
        await asyncio.gather(*(listener.drain(_left(deadline)) for listener in self._listeners))
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self._app_shutdown()
        await self._clients.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        remove_settings(self._added_settings)
        self._added_settings = {}
        self._listeners, self._timers = [], []

    async def _app_shutdown(self) -> None:
        """Await the app's ``on_host_shutdown()`` coroutine, if it defines one, so it can close its
        clients on this loop. The Python worker has no such hook yet (there a process simply exits);
        it stands in for the proposed ``@app.on_shutdown``, and devhost gives it 1 s."""
        if not self._specs:
            return
        hook = getattr(import_app_module(self.app_module, self.project_dir), "on_host_shutdown", None)
        if not asyncio.iscoroutinefunction(hook):
            return
        try:
            await asyncio.wait_for(hook(), APP_SHUTDOWN_SECONDS)
        except Exception:
            log.exception("the app's on_host_shutdown() failed")

    async def _finish_tasks(self, deadline: float) -> None:
        """Wait for the polling loops and timers (a timer may be mid-invocation), then cancel stragglers."""
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=_left(deadline))
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _left(deadline: float) -> float:
    return max(0.0, deadline - asyncio.get_running_loop().time())


def _report_crash(task: asyncio.Task[None]) -> None:
    """Listeners and timers handle their own errors; anything escaping them is a devhost bug."""
    if not task.cancelled() and task.exception() is not None:
        log.error("%s stopped unexpectedly", task.get_name(), exc_info=task.exception())
