"""The HTTP front end: ``/{routePrefix}/{route}`` to HTTP-triggered functions, plus devhost endpoints.

Unknown paths get 404; a path some function serves but not with this method gets 405 and an Allow
header. Any failure inside a function is logged with its trace and answered with a bare 500, so
nothing internal leaks to the client (as the real host does).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from devhost.functions import HTTP_TRIGGER, RETURN, FunctionSpec
from devhost.http_convert import from_function_response, to_function_request
from devhost.invoker import Invoker
from devhost.routing import RouteTemplate, split_path

log = logging.getLogger("devhost.http")
KeysProvider = Callable[[], Awaitable[dict[str, Any]]]
MAX_BODY = 100 * 1024 * 1024  # the Functions host's default request size limit
KEYS_PATH = "/.devhost/keys"
HEALTH_PATH = "/.devhost/health"


class HttpDispatcher:
    """Routes requests to HTTP-triggered functions and invokes them."""

    def __init__(self, specs: Sequence[FunctionSpec], route_prefix: str, invoker: Invoker) -> None:
        routes = [(RouteTemplate.parse(s.route or s.name), s) for s in specs if s.trigger_type == HTTP_TRIGGER]
        self._routes = sorted(routes, key=lambda pair: pair[0].precedence)
        self._prefix = [p.lower() for p in split_path(route_prefix)]
        self._invoker = invoker

    def _find(self, request: web.Request) -> tuple[FunctionSpec, dict[str, str]] | set[str] | None:
        """The function and route values for a request, the allowed methods (405), or None (404)."""
        segments = split_path(request.rel_url.raw_path)
        if [s.lower() for s in segments[: len(self._prefix)]] != self._prefix:
            return None
        rest = segments[len(self._prefix) :]
        allowed: set[str] = set()
        for template, spec in self._routes:
            values = template.match(rest)
            if values is None:
                continue
            if spec.methods is None or request.method.upper() in spec.methods:
                return spec, values
            allowed |= spec.methods
        return allowed or None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        found = self._find(request)
        if found is None:
            return web.Response(status=404, text="Not Found")
        if isinstance(found, set):
            return web.Response(status=405, text="Method Not Allowed", headers={"Allow": ", ".join(sorted(found))})
        spec, route_params = found
        try:
            function_request = await to_function_request(request, route_params)
            result = await self._invoker.invoke(spec, function_request, reason=f"HTTP {request.method} {request.path}")
        except Exception:
            return _server_error()  # the invoker logged the failure with its trace
        try:
            return from_function_response(_http_output(spec, result.outputs))
        except Exception:
            log.exception("Functions.%s: cannot turn its result into an HTTP response", spec.name)
            return _server_error()


def _server_error() -> web.Response:
    """A 500 that tells the client nothing about the failure."""
    return web.Response(status=500, text="Internal Server Error")


def _http_output(spec: FunctionSpec, outputs: Mapping[str, Any]) -> Any:
    """The value of the function's HTTP output binding (``$return`` unless it names a parameter)."""
    name = next((o.arg_name for o in spec.outputs if o.type == "http"), RETURN)
    return outputs.get(name)


def build_application(dispatcher: HttpDispatcher, keys: KeysProvider) -> web.Application:
    """The aiohttp application: devhost endpoints first, then every other path to the dispatcher."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "healthy"})

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response(await keys())

    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_get(HEALTH_PATH, health)
    app.router.add_get(KEYS_PATH, jwks)
    app.router.add_route("*", "/{tail:.*}", dispatcher.handle)
    return app
