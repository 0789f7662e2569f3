"""Bench-only job types, added to the app's registry by bench/app.py (never deployed).

- ``bench-analyze``: the end-to-end job (bench/work.py) through the job-author API: the app's
  ``ctx.files`` read and write, no progress writes.
- ``bench-sleep``: waits ``seconds`` and does nothing else: the crash probe's slow job.
"""

from __future__ import annotations

import asyncio
import uuid

from pydantic import Field

from bench.work import analysis_of, output_name, summary_of
from jobs import REGISTRY
from jobs.storage_names import ANALYSIS, DOCUMENTS
from shared.handlers import JobContext, JobRegistry, JobType, Payload, ResultSummary


class TaggedPayload(Payload):
    tag: str = Field(max_length=64)
    seconds: float = Field(default=0.0, ge=0, le=60)


def _key(subject_id: uuid.UUID, payload: TaggedPayload) -> str:
    return f"bench-{subject_id}-{payload.tag}"


async def analyze(ctx: JobContext[TaggedPayload]) -> ResultSummary:
    subject = str(ctx.contract.subject_id)
    text = await ctx.files.read_text(ctx.container(DOCUMENTS), subject)
    analysis = analysis_of(subject, text)
    await ctx.files.write_json(ctx.container(ANALYSIS), output_name(subject, ctx.payload.tag), analysis)
    return summary_of(analysis)


async def sleep(ctx: JobContext[TaggedPayload]) -> ResultSummary:
    await asyncio.sleep(ctx.payload.seconds)
    return {"slept": ctx.payload.seconds}


ANALYZE: JobType[TaggedPayload] = JobType(name="bench-analyze", payload_model=TaggedPayload, idempotency_key=_key,
                                          max_attempts=3, handler=analyze, containers=(DOCUMENTS, ANALYSIS))
SLEEP: JobType[TaggedPayload] = JobType(name="bench-sleep", payload_model=TaggedPayload, idempotency_key=_key,
                                        max_attempts=3, handler=sleep)
BENCH_REGISTRY = JobRegistry([*REGISTRY, ANALYZE, SLEEP])
