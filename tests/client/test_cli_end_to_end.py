"""End to end: the ``python -m client`` command line (dev auth) against the real app hosted by
``python -m devhost`` in its own process, on a test Azurite with names unique to this module."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

from client import exit_codes
from devhost.azurite import PROJECT_ROOT, Azurite
from tests.devhost_process import devhost_process
from tests.support import TENANT

DOCUMENT = b"Queues deliver at least once. Handlers must be idempotent. Status lives in Table storage."


@pytest.fixture(scope="module")
def devhost(azurite: Azurite, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with devhost_process(azurite, Path(tmp_path_factory.mktemp("devhost")), "c") as env:
        yield env


def jobs(devhost: dict[str, str], *args: str, timeout: float = 90, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m client ARGS`` like a user would (the base URL from JOBS_BASE_URL: loopback -> dev auth)."""
    return subprocess.run(
        [sys.executable, "-m", "client", *args], cwd=PROJECT_ROOT, env={**devhost, **env}, capture_output=True,
        text=True, timeout=timeout, check=False,
    )


def jobs_json(devhost: dict[str, str], *args: str) -> Any:
    done = jobs(devhost, *args, "--json")
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)
    return json.loads(done.stdout)


def upload_document(devhost: dict[str, str]) -> uuid.UUID:
    subject = uuid.uuid4()
    container = BlobServiceClient.from_connection_string(devhost["AzureWebJobsStorage"]).get_container_client(
        devhost["JOBS_DOCUMENTS_CONTAINER"])
    if not container.exists():
        container.create_container()
    container.upload_blob(f"{TENANT}/{subject}", DOCUMENT)
    return subject


def submit_doc_index(devhost: dict[str, str], subject: uuid.UUID) -> str:
    accepted = jobs_json(devhost, "submit", "--type", "doc-index", "--subject", str(subject),
                         "--payload", '{"rowVersion": 1, "action": "index"}')
    assert accepted["status"] == "Queued" and accepted["statusUrl"] == f"/api/jobs/{accepted['jobId']}/status"
    return str(accepted["jobId"])


@pytest.fixture(scope="module")
def completed(devhost: dict[str, str]) -> dict[str, str]:
    """A doc-index job submitted and waited for with the CLI."""
    subject = upload_document(devhost)
    job_id = submit_doc_index(devhost, subject)
    waited = jobs(devhost, "wait", job_id, "--timeout", "60")
    return {"job_id": job_id, "subject": str(subject), "rc": str(waited.returncode), "out": waited.stdout,
            "err": waited.stderr}


def test_wait_follows_a_doc_index_job_to_completed_and_exits_0(completed: dict[str, str]) -> None:
    assert completed["rc"] == "0", completed
    assert completed["out"].strip().startswith(f"{completed['job_id']} Completed")
    assert "Completed" in completed["err"]  # the progress lines (stderr is not a TTY here)


def test_status_shows_the_result_and_history(devhost: dict[str, str], completed: dict[str, str]) -> None:
    status = jobs_json(devhost, "status", completed["job_id"], "--history")
    assert status["status"] == "Completed" and status["jobType"] == "doc-index"
    assert status["subjectId"] == completed["subject"] and status["result"]["terms"] >= 7
    human = jobs(devhost, "status", completed["job_id"])
    assert human.returncode == 0 and "Completed" in human.stdout and completed["job_id"] in human.stdout


def test_list_shows_the_job(devhost: dict[str, str], completed: dict[str, str]) -> None:
    listed = jobs_json(devhost, "list", "--subject", completed["subject"], "--all")
    assert completed["job_id"] in [item["jobId"] for item in listed["items"]]
    table = jobs(devhost, "list", "--all")
    assert table.returncode == 0 and completed["job_id"] in table.stdout


def test_list_status_completed_shows_the_completed_job(devhost: dict[str, str], completed: dict[str, str]) -> None:
    listed = jobs_json(devhost, "list", "--status", "Completed", "--type", "doc-index", "--page-size", "5", "--all")
    assert completed["job_id"] in [item["jobId"] for item in listed["items"]]
    assert {item["status"] for item in listed["items"]} == {"Completed"}


def test_resubmitting_the_same_job_is_replayed(devhost: dict[str, str], completed: dict[str, str]) -> None:
    again = jobs(devhost, "submit", "--type", "doc-index", "--subject", completed["subject"],
                 "--payload", '{"rowVersion": 1, "action": "index"}')
    assert again.returncode == 0, again.stderr
    assert again.stdout.startswith(f"{completed['job_id']} Completed (replayed")


def test_analyze_with_wait_completes(devhost: dict[str, str]) -> None:
    subject = upload_document(devhost)
    done = jobs(devhost, "analyze", "--document", str(subject), "--type", "statistics", "--wait", "--timeout", "60")
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert " Completed" in done.stdout


def test_a_job_whose_subject_is_missing_fails_and_retry_answers_202(devhost: dict[str, str]) -> None:
    job_id = submit_doc_index(devhost, uuid.uuid4())  # nothing uploaded
    failed = jobs(devhost, "wait", job_id, "--timeout", "60")
    assert failed.returncode == exit_codes.FAILED, (failed.stdout, failed.stderr)
    assert "SUBJECT_NOT_FOUND" in failed.stdout

    retried = jobs_json(devhost, "retry", job_id)
    assert retried["jobId"] == job_id and retried["status"] == "Queued"
    again = jobs(devhost, "wait", job_id, "--timeout", "60")
    assert again.returncode == exit_codes.FAILED, (again.stdout, again.stderr)
    assert jobs_json(devhost, "status", job_id)["run"] == 2


def test_cancel_of_a_terminal_job_is_409_and_exits_non_zero(devhost: dict[str, str]) -> None:
    job_id = submit_doc_index(devhost, uuid.uuid4())
    assert jobs(devhost, "wait", job_id, "--timeout", "60").returncode == exit_codes.FAILED
    cancelled = jobs(devhost, "cancel", job_id)
    assert cancelled.returncode == exit_codes.API_ERROR, (cancelled.stdout, cancelled.stderr)
    assert cancelled.stderr.startswith("JOB_ALREADY_TERMINAL: ") and "(correlation id " in cancelled.stderr
    not_retryable = jobs(devhost, "retry", str(uuid.uuid4()))
    assert not_retryable.returncode == exit_codes.API_ERROR and not_retryable.stderr.startswith("JOB_NOT_FOUND: ")


def test_api_errors_exit_1_with_code_and_correlation_id(devhost: dict[str, str]) -> None:
    correlation = str(uuid.uuid4())
    missing = jobs(devhost, "status", str(uuid.uuid4()), "--correlation-id", correlation)
    assert missing.returncode == exit_codes.API_ERROR
    assert missing.stderr.startswith("JOB_NOT_FOUND: ")
    assert missing.stderr.strip().endswith(f"(correlation id {correlation})")
    read_only = jobs(devhost, "submit", "--type", "doc-index", "--subject", str(uuid.uuid4()),
                     "--payload", '{"rowVersion": 1, "action": "index"}', JOBS_DEV_SCOPES="Jobs.Read")
    assert read_only.returncode == exit_codes.API_ERROR and read_only.stderr.startswith("AUTH_PERMISSION_MISSING: ")
    bad_payload = jobs(devhost, "submit", "--type", "doc-index", "--subject", str(uuid.uuid4()))
    assert bad_payload.returncode == exit_codes.API_ERROR and bad_payload.stderr.startswith("PAYLOAD_INVALID: ")


def test_result_prints_an_analysis_and_writes_it_to_a_file(devhost: dict[str, str], tmp_path: Path) -> None:
    subject = upload_document(devhost)
    done = jobs(devhost, "analyze", "--document", str(subject), "--type", "keywords", "--wait", "--timeout", "60")
    assert done.returncode == 0, (done.stdout, done.stderr)
    job_id = done.stdout.split()[0]
    printed = jobs(devhost, "result", job_id)
    assert printed.returncode == 0, printed.stderr
    analysis = json.loads(printed.stdout)  # the analysis JSON itself, as the handler wrote it
    assert analysis["documentId"] == str(subject) and analysis["analysisType"] == "keywords"
    assert {k["term"] for k in analysis["keywords"]} >= {"idempotent", "queues"}
    target = tmp_path / "analysis.json"
    written = jobs(devhost, "result", job_id, "-o", str(target))
    assert written.returncode == 0 and json.loads(target.read_text()) == analysis
    assert f"{job_id} result written to {target}" in written.stderr
    wrapped = jobs_json(devhost, "result", job_id)
    assert wrapped["jobId"] == job_id and wrapped["jobType"] == "ai-analyze" and wrapped["result"] == analysis


def test_result_of_a_failed_job_is_409_not_completed(devhost: dict[str, str]) -> None:
    job_id = submit_doc_index(devhost, uuid.uuid4())  # nothing uploaded: Failed
    assert jobs(devhost, "wait", job_id, "--timeout", "60").returncode == exit_codes.FAILED
    refused = jobs(devhost, "result", job_id)
    assert refused.returncode == exit_codes.API_ERROR and refused.stderr.startswith("JOB_NOT_COMPLETED: ")
    assert "Failed" in refused.stderr


def test_a_delayed_submission_runs_no_sooner_than_asked(devhost: dict[str, str]) -> None:
    subject = upload_document(devhost)
    accepted = jobs_json(devhost, "submit", "--type", "doc-index", "--subject", str(subject),
                         "--payload", '{"rowVersion": 1, "action": "index"}', "--delay", "8")
    shown = jobs(devhost, "status", accepted["jobId"])
    assert "not before" in shown.stdout
    queued = jobs_json(devhost, "status", accepted["jobId"])
    assert queued["status"] == "Queued" and queued["notBefore"] > queued["createdAt"]
    assert jobs(devhost, "wait", accepted["jobId"], "--timeout", "60").returncode == 0
    history = jobs_json(devhost, "status", accepted["jobId"], "--history")["history"]
    claimed = next(entry for entry in history if entry["reason"] == "Claimed")
    assert claimed["at"] >= queued["notBefore"]  # UTC ISO 8601 with Z: ordered as strings


def test_submit_from_a_file_is_one_batch_with_an_answer_per_line(devhost: dict[str, str], tmp_path: Path) -> None:
    subjects = [upload_document(devhost) for _ in range(2)]
    lines = [json.dumps({"jobType": "doc-index", "subjectId": str(s), "payload": {"rowVersion": 1, "action": "index"}})
             for s in subjects]
    lines.append(json.dumps({"jobType": "no-such-type", "subjectId": str(uuid.uuid4()), "payload": {}}))
    jobs_file = tmp_path / "jobs.jsonl"
    jobs_file.write_text("\n".join(lines) + "\n")
    done = jobs(devhost, "submit", "--from-file", str(jobs_file))
    assert done.returncode == exit_codes.API_ERROR, (done.stdout, done.stderr)  # one line was refused
    out = done.stdout.splitlines()
    assert [line.split()[0] for line in out] == ["1", "2", "3"]
    assert out[2].startswith("3 UNKNOWN_JOB_TYPE: ")
    for line in out[:2]:
        assert jobs(devhost, "wait", line.split()[1], "--timeout", "60").returncode == 0


def test_upload_then_submit_all_three_job_types_with_no_sdk_code(devhost: dict[str, str], tmp_path: Path) -> None:
    document = tmp_path / "notes.txt"
    document.write_bytes(DOCUMENT)
    mail = tmp_path / "hello.eml"
    mail.write_bytes(b"Message-ID: <up1@example.com>\r\nFrom: a@example.com\r\nTo: b@example.com\r\n"
                     b"Subject: uploaded\r\n\r\nhello\r\n")
    doc_id = jobs(devhost, "upload", str(document), "--kind", "document")
    mail_id = jobs(devhost, "upload", str(mail), "--kind", "mail")
    assert doc_id.returncode == 0 and mail_id.returncode == 0, (doc_id.stderr, mail_id.stderr)
    doc_subject, mail_subject = doc_id.stdout.strip(), mail_id.stdout.strip()
    assert uuid.UUID(doc_subject) and uuid.UUID(mail_subject)
    runs = [
        jobs(devhost, "submit", "--type", "doc-index", "--subject", doc_subject,
             "--payload", '{"rowVersion": 1, "action": "index"}', "--wait", "--timeout", "60"),
        jobs(devhost, "analyze", "--document", doc_subject, "--type", "statistics", "--wait", "--timeout", "60"),
        jobs(devhost, "submit", "--type", "email-process", "--subject", mail_subject,
             "--payload", '{"messageId": "up1@example.com"}', "--wait", "--timeout", "60"),
    ]
    for run in runs:
        assert run.returncode == 0 and " Completed" in run.stdout, (run.stdout, run.stderr)
    metadata = json.loads(jobs(devhost, "result", runs[2].stdout.split()[0]).stdout)
    assert metadata["subject"] == "uploaded"


def test_events_prints_and_acknowledges_the_outcomes_and_follow_waits_for_new_ones(devhost: dict[str, str]) -> None:
    env = {"JOBS_EVENTS_CONNECTION": devhost["AzureWebJobsStorage"],
           "JOBS_EVENTS_QUEUE": devhost["JOBS_OUTCOMES_QUEUE"]}
    job_id = submit_doc_index(devhost, upload_document(devhost))
    assert jobs(devhost, "wait", job_id, "--timeout", "60").returncode == 0
    drained = jobs(devhost, "events", "--json", **env)
    assert drained.returncode == 0, drained.stderr
    seen = [json.loads(line) for line in drained.stdout.splitlines()]
    mine = [e for e in seen if e["subject"] == job_id]
    assert [e["type"] for e in mine] == ["BackgroundJobs.JobOutcome.Completed"] and mine[0]["specversion"] == "1.0"
    assert jobs(devhost, "events", **env).stdout == ""  # acknowledged: gone from the queue
    follower = subprocess.Popen([sys.executable, "-m", "client", "events", "--follow"], cwd=PROJECT_ROOT,
                                env={**devhost, **env}, stdout=subprocess.PIPE, text=True)
    try:
        later = submit_doc_index(devhost, uuid.uuid4())  # nothing uploaded: it fails
        assert follower.stdout is not None
        line = follower.stdout.readline()  # blocks until --follow prints the new event
        assert f" {later} Failed SUBJECT_NOT_FOUND " in line, line
    finally:
        follower.terminate()
        follower.wait(timeout=10)
