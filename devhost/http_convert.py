"""Translate between aiohttp and ``azure.functions`` HTTP objects, as the worker's converters do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import azure.functions as func
from aiohttp import web
from azure.functions import _abc as azf_abc
from multidict import CIMultiDict

# Hop-by-hop and framing headers are aiohttp's to set, from the body it actually sends.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


def _joined(pairs: Any, separator: str) -> dict[str, str]:
    """Fold repeated keys into one value, as the host does for headers (", ") and query (",")."""
    result: dict[str, str] = {}
    for key, value in pairs:
        result[key] = f"{result[key]}{separator}{value}" if key in result else value
    return result


async def to_function_request(request: web.Request, route_params: Mapping[str, str]) -> func.HttpRequest:
    """Build the ``func.HttpRequest`` a function receives for an aiohttp request."""
    body = await request.read()
    headers = _joined(((k.lower(), v) for k, v in request.headers.items()), ", ")
    params = _joined(request.rel_url.query.items(), ",")
    return func.HttpRequest(
        request.method,
        str(request.url),
        headers=headers,
        params=params,
        route_params=dict(route_params),
        body=body,
    )


def _content_type(response: azf_abc.HttpResponse) -> str:
    mimetype = str(response.mimetype)
    return f"{mimetype}; charset={response.charset}" if mimetype.startswith("text/") else mimetype


def from_function_response(result: Any) -> web.Response:
    """Turn what an HTTP function returned into an aiohttp response.

    ``func.HttpResponse`` is converted field by field (Content-Type from mimetype and charset unless
    a header sets it); a ``str`` is a 200 text/plain body, as the worker allows; ``None`` is 204.
    """
    if isinstance(result, azf_abc.HttpResponse):
        headers: CIMultiDict[str] = CIMultiDict()
        for key, value in result.headers.items():
            if key.lower() not in _FRAMING_HEADERS:
                headers.add(key, str(value))
        if "content-type" not in headers:
            headers["Content-Type"] = _content_type(result)
        return web.Response(status=int(result.status_code), headers=headers, body=result.get_body() or b"")
    if isinstance(result, str):
        return web.Response(status=200, body=result.encode("utf-8"), content_type="text/plain", charset="utf-8")
    if isinstance(result, bytes):
        return web.Response(status=200, body=result, content_type="application/octet-stream")
    if result is None:
        return web.Response(status=204)
    raise TypeError(f"an HTTP function returned {type(result).__name__}; expected func.HttpResponse or str")
