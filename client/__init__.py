"""A typed Python client and command-line tool (``jobs``) for the background-jobs HTTP API.

    from client import JobsClient
    from client.auth import DevTokenProvider

    jobs = JobsClient("http://127.0.0.1:7071", DevTokenProvider())
    accepted = jobs.submit("doc-index", subject_id, {"rowVersion": 1, "action": "index"})
    final = jobs.wait(accepted.job_id, timeout=60)
"""

from __future__ import annotations

from client.api import JobsClient, TokenProvider
from client.errors import (
    AuthenticationError,
    ConfigurationError,
    JobsApiError,
    JobsClientError,
    JobsConnectionError,
    WaitTimeoutError,
)
from client.models import TERMINAL_STATUSES, Accepted, HistoryEntry, JobPage, JobState, JobStatus, Outcome

__all__ = [
    "TERMINAL_STATUSES",
    "Accepted",
    "AuthenticationError",
    "ConfigurationError",
    "HistoryEntry",
    "JobPage",
    "JobState",
    "JobStatus",
    "JobsApiError",
    "JobsClient",
    "JobsClientError",
    "JobsConnectionError",
    "Outcome",
    "TokenProvider",
    "WaitTimeoutError",
]
