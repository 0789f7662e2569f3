"""Exit codes of the ``jobs`` command line (docs/client.md lists them)."""

from __future__ import annotations

from client.models import JobState

OK = 0  # success; for wait (and --wait): the job Completed
API_ERROR = 1  # the API answered with an error (problem+json); the code is printed
USAGE = 2  # bad arguments or settings
FAILED = 3  # the job ended Failed
POISONED = 4  # the job ended Poisoned
CANCELLED = 5  # the job ended Cancelled
TIMEOUT = 6  # wait gave up before the job was terminal
UNREACHABLE = 7  # no answer from the API (connection refused, DNS, TLS, timeout)
AUTH_FAILED = 8  # no token could be obtained
INTERRUPTED = 130  # Ctrl-C

BY_FINAL_STATUS: dict[str, int] = {
    JobState.COMPLETED: OK, JobState.FAILED: FAILED, JobState.POISONED: POISONED, JobState.CANCELLED: CANCELLED,
}


def for_final_status(status: str) -> int:
    """The exit code for a job's terminal status (API_ERROR for a status this client does not know)."""
    return BY_FINAL_STATUS.get(status, API_ERROR)
