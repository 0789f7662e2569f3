"""Turn indexed ``azure.functions`` Function objects into what the host needs to run them.

This is where the host checks what it supports (HTTP, queue and timer triggers; HTTP and queue
outputs) and resolves ``%Setting%`` expressions, so that every problem shows up at startup, as
with the real host, rather than on the first message.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from devhost.errors import DevHostError
from devhost.settings import resolve

HTTP_TRIGGER = "httpTrigger"
QUEUE_TRIGGER = "queueTrigger"
TIMER_TRIGGER = "timerTrigger"
RETURN = "$return"
CONTEXT_ARG = "context"
_QUEUE_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_OUT = 1


@dataclass(frozen=True)
class OutputBinding:
    """An output binding: ``arg_name`` is a parameter name or ``$return``."""

    arg_name: str
    type: str
    queue_name: str | None = None
    connection: str | None = None


@dataclass(frozen=True)
class FunctionSpec:
    """One function, with its trigger's settings resolved."""

    name: str
    trigger_type: str
    trigger_arg: str
    user_function: Callable[..., Any]
    outputs: tuple[OutputBinding, ...] = ()
    wants_context: bool = False
    # HTTP
    route: str | None = None
    methods: frozenset[str] | None = None
    # queue
    queue_name: str | None = None
    connection: str | None = None
    # timer
    schedule: str | None = None
    run_on_startup: bool = False

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.user_function)

    def describe(self) -> str:
        """One line for the startup banner."""
        if self.trigger_type == HTTP_TRIGGER:
            methods = ",".join(sorted(self.methods)) if self.methods else "ALL"
            return f"{self.name}: [{methods}] {self.route}"
        if self.trigger_type == QUEUE_TRIGGER:
            return f"{self.name}: queue {self.queue_name}"
        return f"{self.name}: timer {self.schedule}" + (" (runOnStartup)" if self.run_on_startup else "")


def queue_name(raw: str, environ: Mapping[str, str] | None = None) -> str:
    """Resolve and normalise a queue name (lower case, as the extension does) and validate it."""
    name = resolve(raw, environ).lower()
    if not _QUEUE_NAME.match(name):
        raise DevHostError(
            f"invalid queue name {name!r}: 3-63 characters of lower-case letters, digits and single hyphens, "
            "starting and ending with a letter or digit"
        )
    return name


def _methods(trigger: Any) -> frozenset[str] | None:
    methods = getattr(trigger, "methods", None)
    if not methods:
        return None
    return frozenset(str(getattr(m, "value", m)).upper() for m in methods)


def _outputs(function: Any, environ: Mapping[str, str] | None) -> tuple[OutputBinding, ...]:
    outputs: list[OutputBinding] = []
    name = function.get_function_name()
    for binding in function.get_bindings():
        if binding is function.get_trigger():
            continue
        if binding.direction != _OUT or binding.type not in ("http", "queue"):
            raise DevHostError(f"function {name}: binding {binding.name!r} of type {binding.type!r} is not supported")
        if binding.type == "queue":
            target = queue_name(binding.queue_name, environ)
            outputs.append(OutputBinding(binding.name, "queue", target, binding.connection))
        else:
            outputs.append(OutputBinding(binding.name, "http"))
    return tuple(outputs)


def _check_parameters(spec: FunctionSpec) -> bool:
    """Check the user function takes the bound arguments; return whether it wants ``context``."""
    bound = {spec.trigger_arg, *(o.arg_name for o in spec.outputs if o.arg_name != RETURN)}
    parameters = inspect.signature(spec.user_function).parameters
    missing = bound - set(parameters)
    if missing:
        raise DevHostError(f"function {spec.name}: bound argument(s) {sorted(missing)} are not parameters")
    for parameter in parameters.values():
        unbound = parameter.name not in bound and parameter.name != CONTEXT_ARG
        required = parameter.default is inspect.Parameter.empty
        if unbound and required and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise DevHostError(f"function {spec.name}: parameter {parameter.name!r} has no binding")
    return CONTEXT_ARG in parameters and CONTEXT_ARG not in bound


def _trigger_fields(trigger: Any, name: str, environ: Mapping[str, str] | None) -> dict[str, Any]:
    kind = trigger.type
    if kind == HTTP_TRIGGER:
        route = trigger.route if trigger.route is not None else name
        return {"route": route.strip("/"), "methods": _methods(trigger)}
    if kind == QUEUE_TRIGGER:
        return {"queue_name": queue_name(trigger.queue_name, environ), "connection": trigger.connection}
    if kind == TIMER_TRIGGER:
        return {"schedule": resolve(trigger.schedule, environ), "run_on_startup": bool(trigger.run_on_startup)}
    raise DevHostError(f"function {name}: trigger type {kind!r} is not supported by devhost")


def build_spec(function: Any, environ: Mapping[str, str] | None = None) -> FunctionSpec:
    """Describe one indexed function; raises DevHostError for anything the host cannot run."""
    name = str(function.get_function_name())
    trigger = function.get_trigger()
    spec = FunctionSpec(
        name=name,
        trigger_type=trigger.type,
        trigger_arg=trigger.name,
        user_function=function.get_user_function(),
        outputs=_outputs(function, environ),
        **_trigger_fields(trigger, name, environ),
    )
    return replace(spec, wants_context=_check_parameters(spec))


def build_specs(functions: list[Any], environ: Mapping[str, str] | None = None) -> list[FunctionSpec]:
    """Describe every function of the app."""
    return [build_spec(f, environ) for f in functions]
