"""Telemetry: Azure Monitor when configured, W3C trace context across HTTP, queue and outcome.

- ``configure_telemetry()`` turns on the Azure Monitor OpenTelemetry distro only when
  APPLICATIONINSIGHTS_CONNECTION_STRING is set, authenticating ingestion with the app's managed
  identity when APPLICATIONINSIGHTS_AUTHENTICATION_STRING says ``Authorization=AAD``. Without a
  connection string (locally, in tests) nothing is configured, nothing is sent, and the spans
  below are no-ops that still carry an incoming trace context along.
- The trace context travels with the job: the submit span's ``traceparent`` is stored on the
  status entity (the queue contract is the seed's schema and stays untouched), the worker reads
  it back and runs the handler in a child span, and the outcome event carries ``traceParent``.
  One end-to-end transaction in Application Insights shows submit, handler and outcome.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind

__all__ = ["SpanKind", "configure_telemetry", "current_traceparent", "job_span"]

logger = logging.getLogger("jobs.telemetry")
tracer = trace.get_tracer("jobs")
_configured = False


def _ingestion_credential(env: Mapping[str, str]) -> Any:
    """Entra-authenticated ingestion (local auth is off on the component): ``ClientId=..;Authorization=AAD``."""
    setting = env.get("APPLICATIONINSIGHTS_AUTHENTICATION_STRING", "")
    parts = dict(p.split("=", 1) for p in setting.split(";") if "=" in p)
    if parts.get("Authorization", "").upper() != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential  # noqa: PLC0415 - only in Azure

    return ManagedIdentityCredential(client_id=parts.get("ClientId") or None)


def configure_telemetry(env: Mapping[str, str] | None = None) -> bool:
    """Configure Azure Monitor once per process; False (and nothing done) without a connection string."""
    global _configured  # noqa: PLW0603 - one process-wide configuration, like the distro itself
    env = os.environ if env is None else env
    if _configured or not env.get("APPLICATIONINSIGHTS_CONNECTION_STRING"):
        return _configured
    from azure.monitor.opentelemetry import configure_azure_monitor  # noqa: PLC0415 - heavy; Azure only

    credential = _ingestion_credential(env)
    options: dict[str, Any] = {"logger_name": "jobs"}
    if credential is not None:
        options["credential"] = credential
    configure_azure_monitor(**options)
    _configured = True
    logger.info("Azure Monitor telemetry configured")
    return True


def current_traceparent() -> str | None:
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def job_span(name: str, kind: SpanKind, *, carrier: Mapping[str, str] | None = None,
             traceparent: str | None = None, attributes: Mapping[str, Any] | None = None) -> Iterator[Span]:
    """A span continuing the given W3C context (request headers, or a stored traceparent)."""
    source = dict(carrier or {})
    if traceparent:
        source = {"traceparent": traceparent}
    context = propagate.extract({k.lower(): v for k, v in source.items()})
    with tracer.start_as_current_span(name, context=context, kind=kind, attributes=dict(attributes or {})) as span:
        yield span
