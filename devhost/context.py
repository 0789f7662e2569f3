"""The objects the worker hands to user functions besides the trigger: ``context`` and ``Out`` values."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import azure.functions as func
from azure.functions import _abc as azf_abc


class OutValue(func.Out[Any]):
    """An ``azure.functions.Out`` for an output binding; the host reads it after the call."""

    def __init__(self) -> None:
        self._value: Any = None

    def set(self, val: Any) -> None:
        self._value = val

    def get(self) -> Any:
        return self._value


class _TraceContext(azf_abc.TraceContext):
    """An empty W3C trace context: locally there is no incoming trace to continue."""

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return ""

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _RetryContext(azf_abc.RetryContext):
    """No retry policy runs locally: always the first try."""

    @property
    def retry_count(self) -> int:
        return 0

    @property
    def max_retry_count(self) -> int:
        return 0

    @property
    def exception(self) -> Any:
        return None


class InvocationContext(func.Context):
    """What a function gets when it declares a ``context`` parameter."""

    def __init__(self, function_name: str, function_directory: str, invocation_id: str | None = None) -> None:
        self._invocation_id = invocation_id or str(uuid.uuid4())
        self._function_name = function_name
        self._function_directory = function_directory
        self._thread_local = threading.local()

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._thread_local

    @property
    def function_name(self) -> str:
        return self._function_name

    @property
    def function_directory(self) -> str:
        return self._function_directory

    @property
    def trace_context(self) -> azf_abc.TraceContext:
        return _TraceContext()

    @property
    def retry_context(self) -> azf_abc.RetryContext:
        return _RetryContext()
