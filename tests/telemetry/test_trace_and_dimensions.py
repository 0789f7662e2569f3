"""Telemetry captured in memory: one trace id links submit, handler and outcome, and every job
log record carries jobId, jobType, correlationId and attempt (and outcome where there is one).

The OpenTelemetry SDK is installed here with in-memory exporters instead of Azure Monitor's:
the app code under test is the same that runs with the distro in Azure.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.observability.traces import configure_telemetry
from tests.support import Api, outcome_events, run_until_settled

SPANS = InMemorySpanExporter()
LOGS = InMemoryLogRecordExporter()


@pytest.fixture(scope="module", autouse=True)
def in_memory_telemetry() -> Iterator[None]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(SPANS))
    trace.set_tracer_provider(provider)
    logs = LoggerProvider()
    logs.add_log_record_processor(SimpleLogRecordProcessor(LOGS))
    handler = LoggingHandler(logger_provider=logs)
    jobs_logger = logging.getLogger("jobs")
    jobs_logger.addHandler(handler)
    previous = jobs_logger.level
    jobs_logger.setLevel(logging.INFO)
    yield
    jobs_logger.removeHandler(handler)
    jobs_logger.setLevel(previous)


def test_without_a_connection_string_nothing_is_configured() -> None:
    assert configure_telemetry({}) is False


async def test_one_trace_links_submit_handler_and_outcome(api: Api) -> None:
    SPANS.clear()
    LOGS.clear()
    incoming_trace = uuid.uuid4().hex
    traceparent = f"00-{incoming_trace}-{uuid.uuid4().hex[:16]}-01"
    res = await api.call("POST", "/api/jobs", {"jobType": "probe", "subjectId": str(uuid.uuid4()),
                                                "payload": {"tag": "traced"}}, headers={"traceparent": traceparent})
    assert res.status == 202
    job_id = res.body["jobId"]
    await run_until_settled(api.runtime, uuid.UUID(job_id))

    spans = SPANS.get_finished_spans()
    submit = [s for s in spans if s.name == "POST submit_job"]
    run = [s for s in spans if s.name == "run probe"]
    assert len(submit) == 1 and len(run) == 1
    assert {format(s.context.trace_id, "032x") for s in (*submit, *run)} == {incoming_trace}
    assert submit[0].attributes["http.response.status_code"] == 202
    event = next(e for e in await outcome_events(api.runtime) if e["jobId"] == job_id)
    assert event["traceParent"].split("-")[1] == incoming_trace  # the outcome carries the same trace

    records = [r.log_record for r in LOGS.get_finished_logs()]
    mine = [r for r in records if (r.attributes or {}).get("jobId") == job_id]
    assert len(mine) >= 4
    for record in mine:
        attrs = record.attributes or {}
        assert attrs["jobType"] == "probe" and attrs["correlationId"] and "attempt" in attrs, attrs
        assert format(record.trace_id, "032x") == incoming_trace  # logs join the same transaction
    outcomes = [r.attributes for r in mine if r.attributes and "outcome" in r.attributes]
    assert {o["outcome"] for o in outcomes} == {"Completed"}
    assert any("durationMs" in (r.attributes or {}) for r in mine)
    assert any("queueWaitMs" in (r.attributes or {}) for r in mine)
    assert "authorization" not in json.dumps([dict(r.attributes or {}) for r in records]).lower()
