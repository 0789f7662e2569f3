"""Logging with the job's dimensions on every record.

Each log record of a job carries jobId, jobType, tenantId, correlationId and attempt in
``extra`` (custom dimensions in Application Insights); an outcome adds ``outcome``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from shared.domain.contract import JobContract
from shared.domain.record import JobRecord

LOGGER_NAME = "jobs"


class JobLogger(logging.LoggerAdapter[logging.Logger]):
    """Merges the job's dimensions into every record's ``extra``."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def job_dimensions(job: JobContract | JobRecord, attempt: int | None = None) -> dict[str, Any]:
    return {
        "jobId": str(job.job_id),
        "jobType": job.job_type,
        "tenantId": str(job.tenant_id),
        "correlationId": str(job.correlation_id),
        "attempt": attempt if attempt is not None else job.attempt,
    }


def job_logger(job: JobContract | JobRecord, attempt: int | None = None, name: str = LOGGER_NAME) -> JobLogger:
    return JobLogger(logging.getLogger(name), job_dimensions(job, attempt))


def with_dims(logger: JobLogger, **dims: Any) -> JobLogger:
    base: Mapping[str, Any] = logger.extra or {}
    return JobLogger(logger.logger, {**base, **dims})
