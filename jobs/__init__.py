"""The job types this app runs, one module each."""

from __future__ import annotations

from jobs import ai_analyze, doc_index, email_process
from shared.handlers import JobRegistry

REGISTRY = JobRegistry([doc_index.JOB_TYPE, ai_analyze.JOB_TYPE, email_process.JOB_TYPE])
