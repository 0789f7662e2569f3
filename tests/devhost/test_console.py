"""devhost's console lines carry the app's job dimensions, so `grep <jobId>` tells a job's story."""

from __future__ import annotations

import io
import logging
import uuid

from devhost.console import FORMAT, DimensionsFormatter
from shared.observability.logs import JobLogger


def test_a_job_logger_line_names_its_job_correlation_and_attempt() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(DimensionsFormatter(FORMAT))
    logger = logging.getLogger(f"test-console-{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    job, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    JobLogger(logger, {"jobId": job, "correlationId": correlation, "attempt": 2, "jobType": "probe"}).info("claimed")
    logger.info("no job here")
    first, second = stream.getvalue().splitlines()
    assert first.endswith(f"claimed [jobId={job} correlationId={correlation} attempt=2]")
    assert second.endswith("no job here")  # a line about no job is unchanged
