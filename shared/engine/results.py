"""A Completed job's output: where its job type keeps it, read for the result endpoint.

Job types with an output blob (``JobType.output``: the analysis JSON, the e-mail's metadata)
serve that blob; the others (doc-index) have their result summary on the status entity as their
whole output. Reading costs one blob read (two requests: properties, then content) beyond the
status read, and nothing for a summary.
"""

from __future__ import annotations

import json
from typing import Any

from shared.domain.errors import ErrorCode, JobsError, PermanentJobError
from shared.domain.record import JobRecord
from shared.engine.runtime import Runtime

OUTPUT_LIMIT = 4 * 1024 * 1024  # bytes: an HTTP response, not a download service


async def read_output(runtime: Runtime, record: JobRecord) -> dict[str, Any]:
    job_type = runtime.registry.get(record.job_type)
    where = job_type.output_of(record.subject_id, record.payload) if job_type is not None else None
    if where is None:
        return dict(record.result or {})
    container, name = where
    try:
        data = await runtime.files(record.tenant_id).read_bytes(runtime.settings.name_of(container), name,
                                                                limit=OUTPUT_LIMIT)
    except PermanentJobError as exc:  # missing (deleted since), or larger than an answer should be
        raise JobsError(ErrorCode.RESULT_NOT_FOUND, exc.message) from exc
    value = json.loads(data)
    return value if isinstance(value, dict) else {"value": value}
