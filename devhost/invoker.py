"""Call a user function once: bind its arguments, apply functionTimeout, log the outcome.

As in the Python worker, ``async def`` functions run on the host's event loop and plain functions
run in a thread pool, so one slow sync function never blocks HTTP or queue polling. A sync
function that exceeds functionTimeout cannot be stopped (Python threads cannot be killed): the
invocation fails, and the thread is left to finish in the background (the real host would
restart the worker process instead).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from devhost.context import InvocationContext, OutValue
from devhost.functions import CONTEXT_ARG, RETURN, FunctionSpec

log = logging.getLogger("devhost.invoker")
# Sends output binding values after a successful call (see devhost.outputs).
Flush = Callable[[FunctionSpec, Mapping[str, Any]], Awaitable[None]]


class FunctionTimeoutError(TimeoutError):
    """The invocation ran longer than host.json's functionTimeout."""


@dataclass(frozen=True)
class InvocationResult:
    """What the function produced: its return value and the values set on output bindings."""

    return_value: Any
    outputs: Mapping[str, Any]


class Invoker:
    """Runs invocations for one host; shares its executor and timeout."""

    def __init__(
        self,
        *,
        executor: Executor,
        function_timeout: float | None,
        function_directory: str,
        flush: Flush | None = None,
    ) -> None:
        self._executor = executor
        self._timeout = function_timeout
        self._directory = function_directory
        self._flush = flush

    async def invoke(self, spec: FunctionSpec, trigger_value: Any, *, reason: str) -> InvocationResult:
        """Invoke ``spec`` with ``trigger_value`` bound to the trigger argument; raises what it raises."""
        invocation_id = str(uuid.uuid4())
        outs = {o.arg_name: OutValue() for o in spec.outputs if o.arg_name != RETURN}
        kwargs: dict[str, Any] = {spec.trigger_arg: trigger_value, **outs}
        if spec.wants_context:
            kwargs[CONTEXT_ARG] = InvocationContext(spec.name, self._directory, invocation_id)
        log.debug("Executing 'Functions.%s' (Reason='%s', Id=%s)", spec.name, reason, invocation_id)
        started = time.monotonic()
        try:
            result = await self._call(spec, kwargs)
            outputs = {name: out.get() for name, out in outs.items()}
            outputs[RETURN] = result
            if self._flush is not None:
                await self._flush(spec, outputs)  # a failed send fails the invocation
        except asyncio.CancelledError:
            self._log_outcome(spec, invocation_id, started, "Cancelled", logging.WARNING)
            raise
        except FunctionTimeoutError:
            self._log_outcome(spec, invocation_id, started, "Failed", logging.ERROR)
            log.error("Timeout value of %s seconds was exceeded by function: Functions.%s", self._timeout, spec.name)
            raise
        except Exception:
            self._log_outcome(spec, invocation_id, started, "Failed", logging.ERROR, exc_info=True)
            raise
        self._log_outcome(spec, invocation_id, started, "Succeeded", logging.INFO)
        return InvocationResult(result, outputs)

    async def _call(self, spec: FunctionSpec, kwargs: dict[str, Any]) -> Any:
        scope = asyncio.timeout(self._timeout)
        try:
            async with scope:
                return await self._run(spec, kwargs)
        except TimeoutError as error:
            if not scope.expired():
                raise  # the function's own TimeoutError, not functionTimeout
            if not spec.is_async:
                log.warning("Functions.%s keeps running in its thread after the timeout", spec.name)
            raise FunctionTimeoutError(f"Functions.{spec.name} exceeded functionTimeout") from error

    async def _run(self, spec: FunctionSpec, kwargs: dict[str, Any]) -> Any:
        if spec.is_async:
            result = await spec.user_function(**kwargs)
        else:
            call = functools.partial(contextvars.copy_context().run, spec.user_function, **kwargs)
            result = await asyncio.get_running_loop().run_in_executor(self._executor, call)
        if inspect.isawaitable(result):  # a sync wrapper around a coroutine function
            result = await result
        return result

    @staticmethod
    def _log_outcome(
        spec: FunctionSpec, invocation_id: str, started: float, outcome: str, level: int, *, exc_info: bool = False
    ) -> None:
        duration = (time.monotonic() - started) * 1000
        log.log(
            level,
            "Executed 'Functions.%s' (%s, Trigger=%s, Id=%s, Duration=%dms)",
            spec.name, outcome, spec.trigger_type, invocation_id, duration,
            exc_info=exc_info,
        )
