"""JobOutcome events are CloudEvents 1.0 (structured JSON) that an SDK reads as they are."""

from __future__ import annotations

import json
import uuid

from azure.core.messaging import CloudEvent

from shared.engine.runtime import Runtime
from tests.engine.helpers import submit_job
from tests.support import run_until_settled


async def test_an_outcome_event_is_a_cloud_event_an_sdk_reads(runtime: Runtime) -> None:
    sub = await submit_job(runtime, "probe", {"tag": "cloud"})
    record = await run_until_settled(runtime, sub.record.job_id)
    message = (await runtime.queues.outcomes.peek_messages(max_messages=1))[0]
    raw = json.loads(str(message.content))
    event = CloudEvent.from_json(str(message.content))  # azure-core's reader, as Event Grid's SDK uses
    assert event.specversion == "1.0" and event.type == "BackgroundJobs.JobOutcome.Completed"
    assert event.id == raw["data"]["eventId"] and event.subject == str(record.job_id)
    assert event.source == f"/background-jobs/tenants/{record.tenant_id}"
    assert event.datacontenttype == "application/json" and event.time is not None
    assert isinstance(event.data, dict) and event.data["outcome"] == "Completed" and event.data["jobId"] == str(
        record.job_id)
    assert uuid.UUID(event.id) == record.outcome_event(None).event_id  # the deterministic id
    ttl = message.expires_on - message.inserted_on
    assert abs(ttl.total_seconds() - runtime.settings.outcome_ttl_seconds) < 5  # set deliberately on each send


async def test_the_trace_context_rides_as_the_tracing_extension() -> None:
    from datetime import UTC, datetime

    from shared.domain.contract import JobOutcomeEvent, JobStatus
    ids = {name: uuid.uuid4() for name in ("event", "job", "subject", "tenant", "correlation")}
    event = JobOutcomeEvent(
        event_id=ids["event"], job_id=ids["job"], job_type="probe", subject_id=ids["subject"],
        tenant_id=ids["tenant"], correlation_id=ids["correlation"], idempotency_key="k", attempt=1, run=1,
        outcome=JobStatus.FAILED, code="SUBJECT_NOT_FOUND", occurred_at=datetime.now(UTC),
        trace_parent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
    parsed = CloudEvent.from_json(event.to_cloud_event_json())
    assert parsed.extensions == {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    assert parsed.type == "BackgroundJobs.JobOutcome.Failed"
