"""The history checker: reads what storage holds after a run and counts what is wrong with it.

It reads Azurite directly (never through the proxy): each accepted job's status entity, every
JobOutcome event on the outcomes queue, the doc index, and the handlers' output blobs.

- **lost**: a job the API accepted (202) that has no status entity.
- **stuck**: an accepted job that is not terminal (or still owes its outcome) by the deadline.
- **wrong**: the job's final outcome is not the one its input calls for: Completed, or Failed
  with SUBJECT_NOT_FOUND for a missing subject, or EMAIL_MESSAGE_ID_MISMATCH; a cancelled job
  may end Cancelled or as it would have without the cancel (it finished first), but a cancel
  answered 200 (it was Queued) must end Cancelled; a re-driven job must have completed its run 2,
  and no job has more runs than it was re-driven. Also wrong: a Completed ai-analyze or
  email-process job without its output blob, and a document whose index is not at the newest
  completed version (``~meta``), whose terms differ from its text, or that holds term rows of a
  version newer than the one recorded. And a valid submission the API never accepted (refused
  with a 4xx, or no answer but 5xx and connection errors for 90 s of retries), and the same
  submission sent twice at once answered with two different jobs.
- **missing_events**: a terminal run (every run of every accepted job, not only the last)
  without an outcome event carrying that run's outcome.
- **duplicate_effects**: effects applied twice, or where they must not be: a run with more
  than one terminal transition in the job's history (two Completed entries, say), a run with
  more than one distinct eventId on the outcomes queue (two outcomes for one run), and index
  rows of an older version than the one ``~meta`` records (a stale holder's write that landed
  after a newer version's). The handlers' blob writes are overwrites of the same content and
  cannot be told apart when repeated; how often a handler ran again is reported, not counted:
  at-least-once delivery allows it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables.aio import TableClient
from azure.storage.blob.aio import BlobServiceClient
from azure.storage.queue.aio import QueueClient

from chaos.hosts import TENANT
from chaos.workload import JobSpec, Plan
from jobs.text import term_counts
from shared.domain.contract import JobStatus
from shared.domain.record import JobRecord
from shared.store.status_table import STATUS_ROW, entity_to_record

COUNTS = ("lost", "stuck", "wrong", "missing_events", "duplicate_effects")


@dataclass
class Findings:
    jobs: int = 0
    faults: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    info: Counter[str] = field(default_factory=Counter)

    def add(self, count: str, problem: str) -> None:
        self.counts[count] += 1
        self.problems.append(f"{count}: {problem}")

    @property
    def clean(self) -> bool:
        return not any(self.counts[name] for name in COUNTS)

    def line(self) -> str:
        return " ".join([f"jobs={self.jobs}", f"faults={self.faults}",
                         *(f"{name}={self.counts[name]}" for name in COUNTS)])


def runs_of(record: JobRecord) -> dict[int, list[JobStatus]]:
    """The terminal statuses each run reached, from the history (a re-drive starts the next run)."""
    runs: dict[int, list[JobStatus]] = defaultdict(list)
    run = record.run - sum(1 for e in record.history if e.reason == "Redriven")  # 1 unless entries were dropped
    for entry in record.history:
        if entry.reason == "Redriven":
            run += 1
        if entry.target.is_terminal:
            runs[run].append(entry.target)
    return runs


class Checker:
    """Reads the run's storage; ``events`` accumulate (they are received once and kept invisible)."""

    def __init__(self, storage: str, names: Mapping[str, str], plan: Plan):
        self.storage, self.names, self.plan = storage, names, plan
        self.events: dict[tuple[str, int], set[tuple[str, str]]] = defaultdict(set)  # (job, run) -> {(id, outcome)}

    async def read_events(self) -> None:
        async with QueueClient.from_connection_string(self.storage, self.names["JOBS_OUTCOMES_QUEUE"]) as queue:
            while True:
                batch = [m async for m in queue.receive_messages(messages_per_page=32, max_messages=32,
                                                                  visibility_timeout=3600)]
                for message in batch:
                    event = json.loads(base64.b64decode(message.content))["data"]  # a CloudEvent: its data
                    self.events[(event["jobId"], int(event["run"]))].add((event["eventId"], event["outcome"]))
                if not batch:
                    return

    async def records(self) -> dict[str, JobRecord | None]:
        found: dict[str, JobRecord | None] = {}
        async with TableClient.from_connection_string(self.storage, self.names["JOBS_TABLE"]) as table:
            for spec in self.plan.specs:
                if spec.job_id is None or spec.job_id in found:
                    continue
                try:
                    entity = await table.get_entity(spec.job_id, STATUS_ROW)
                except ResourceNotFoundError:
                    found[spec.job_id] = None
                    continue
                found[spec.job_id] = entity_to_record(entity, entity.metadata["etag"] or "")
        return found

    def unsettled(self, records: Mapping[str, JobRecord | None]) -> list[str]:
        """Accepted jobs that are not done yet: not terminal, outcome pending, or an event not seen yet."""
        waiting = []
        for job_id, record in records.items():
            if record is None:
                continue
            if not record.is_terminal or record.outcome_pending:
                waiting.append(job_id)
                continue
            for run, statuses in runs_of(record).items():
                if not any(outcome == statuses[-1].value for _, outcome in self.events[(job_id, run)]):
                    waiting.append(job_id)
                    break
        return waiting

    async def check(self, faults: int) -> Findings:
        await self.read_events()
        records = await self.records()
        findings = Findings(jobs=sum(1 for s in self.plan.specs if s.accepted), faults=faults)
        findings.info["not accepted"] = sum(1 for s in self.plan.specs if not s.accepted)
        for spec in self.plan.specs:
            if spec.accepted:
                assert spec.job_id is not None
                self._check_job(spec, records.get(spec.job_id), findings)
            else:  # every submission of the plan is valid: refused (4xx) or never answered is wrong too
                findings.add("wrong", f"{spec.label}: never accepted; client notes {spec.notes}")
        await self._check_documents(records, findings)
        await self._check_outputs(records, findings)
        return findings

    def _check_job(self, spec: JobSpec, record: JobRecord | None, findings: Findings) -> None:
        name = f"{spec.label} {spec.job_id}"
        if record is None:
            findings.add("lost", f"{name}: accepted, but no status entity")
            return
        claims = sum(1 for e in record.history if e.reason == "Claimed")
        findings.info["handler runs"] += claims
        findings.info["jobs run more than once"] += claims > max(1, record.run)
        if not record.is_terminal or record.outcome_pending:
            findings.add("stuck", f"{name}: {record.status.value}, outcomePending={record.outcome_pending}, "
                                  f"history {_story(record)}")
            return
        runs = runs_of(record)
        for run, statuses in runs.items():
            if len(statuses) > 1:
                findings.add("duplicate_effects", f"{name}: run {run} reached {len(statuses)} terminal states "
                                                  f"{[s.value for s in statuses]}: {_story(record)}")
            events = self.events[(str(record.job_id), run)]
            if len({event_id for event_id, _ in events}) > 1:
                findings.add("duplicate_effects", f"{name}: run {run} has events {sorted(events)}")
            if not any(outcome == statuses[-1].value for _, outcome in events):
                findings.add("missing_events", f"{name}: run {run} ended {statuses[-1].value}, events {sorted(events)}")
        if len(spec.job_ids) > 1:
            findings.add("wrong", f"{name}: the same submission twice at once got jobs {sorted(spec.job_ids)}")
        problem = self._wrong(spec, record)
        if problem:
            findings.add("wrong", f"{name}: {problem}; history {_story(record)}; client notes {spec.notes}")

    @staticmethod
    def _wrong(spec: JobSpec, record: JobRecord) -> str | None:
        status, code = spec.expected
        runs_allowed = {1}
        if spec.redrive is not None:
            runs_allowed = {2} if spec.redriven else {1, 2} if spec.redriven is None else {1}
        if record.run not in runs_allowed:
            return f"run {record.run}, expected run {sorted(runs_allowed)} (re-driven: {spec.redriven})"
        if record.run == 2:
            status, code = "Completed", None  # its subject was uploaded before the re-drive
        allowed = {(status, code)}
        if spec.cancel_after is not None:
            allowed = {("Cancelled", None)} if spec.cancel_answer == 200 else allowed | {("Cancelled", None)}
        actual = (record.status.value, record.outcome_code if record.status is JobStatus.FAILED else None)
        if actual not in allowed:
            return f"ended {actual}, expected one of {sorted(allowed, key=str)} (cancel answer {spec.cancel_answer})"
        return None

    async def _check_documents(self, records: Mapping[str, JobRecord | None], findings: Findings) -> None:
        """Each indexed document: at the newest completed version (or at a newer one whose job was
        cancelled after an attempt of it ran: that attempt may have applied it before its host died, and a
        cancel stops further attempts, it does not undo one; docs/design-notes.md), its terms those of its
        text, no other rows."""
        completed: dict[uuid.UUID, list[int]] = defaultdict(list)
        interrupted: dict[uuid.UUID, set[int]] = defaultdict(set)
        for spec in self.plan.specs:
            if spec.job_type != "doc-index" or spec.job_id is None:
                continue
            record = records.get(spec.job_id)
            completed.setdefault(spec.subject, [])
            if record is not None and record.status is JobStatus.COMPLETED:
                completed[spec.subject].append(int(spec.payload["rowVersion"]))
            elif (record is not None and record.status is JobStatus.CANCELLED
                  and any(entry.target is JobStatus.RUNNING for entry in record.history)):
                interrupted[spec.subject].add(int(spec.payload["rowVersion"]))
        async with TableClient.from_connection_string(self.storage, self.names["JOBS_INDEX_TABLE"]) as table:
            for subject, versions in completed.items():
                rows = [dict(row) async for row in table.query_entities(
                    "PartitionKey eq @pk", parameters={"pk": f"{TENANT}|doc-{subject}"})]
                self._check_document(subject, versions, rows, findings, interrupted.get(subject, set()))

    def _check_document(self, subject: uuid.UUID, versions: list[int], rows: list[dict[str, Any]],
                        findings: Findings, interrupted: set[int] | None = None) -> None:
        meta = next((row for row in rows if row["RowKey"] == "~meta"), None)
        terms = {row["RowKey"]: row for row in rows if row["RowKey"] != "~meta"}
        indexed = int(meta.get("rowVersion", -1)) if meta else -1
        newest = max(versions, default=-1)
        if indexed > newest and indexed in (interrupted or set()):
            newest = indexed  # applied by an attempt that ran before its job was cancelled
        if indexed != newest:
            findings.add("wrong", f"document {subject}: index at v{indexed}, newest completed v{newest}")
        stale = sorted({int(r["rowVersion"]) for r in terms.values() if int(r["rowVersion"]) < indexed})
        if stale:
            findings.add("duplicate_effects", f"document {subject}: rows of v{stale} under v{indexed}")
        unrecorded = sorted({int(r["rowVersion"]) for r in terms.values() if int(r["rowVersion"]) > indexed})
        if unrecorded:
            findings.add("wrong", f"document {subject}: rows of v{unrecorded}, index records v{indexed}")
        if newest >= 0:
            expected = term_counts(self.plan.texts[subject])
            got = {key: int(row["count"]) for key, row in terms.items()}
            if got != dict(expected):
                findings.add("wrong", f"document {subject}: {len(got)} terms indexed, its text has {len(expected)}")

    async def _check_outputs(self, records: Mapping[str, JobRecord | None], findings: Findings) -> None:
        """A Completed ai-analyze / email-process job's output blob exists and is of its subject."""
        async with BlobServiceClient.from_connection_string(self.storage) as service:
            for spec in self.plan.specs:
                record = records.get(spec.job_id or "")
                if record is None or record.status is not JobStatus.COMPLETED or spec.job_type == "doc-index":
                    continue
                if spec.job_type == "ai-analyze":
                    container, name = "JOBS_ANALYSIS_CONTAINER", f"{spec.subject}/{spec.payload['analysisType']}.json"
                else:
                    container, name = "JOBS_MAIL_CONTAINER", f"{spec.subject}.metadata.json"
                blob = service.get_blob_client(self.names[container], f"{TENANT}/{name}")
                try:
                    output = json.loads(await (await blob.download_blob()).readall())
                except ResourceNotFoundError:
                    findings.add("wrong", f"{spec.label} {spec.job_id}: Completed without its output {name}")
                    continue
                if spec.job_type == "ai-analyze":
                    source = hashlib.sha256(self.plan.texts[spec.subject].encode()).hexdigest()
                    ok = output.get("sourceSha256") == source
                else:
                    ok = output.get("messageId") == spec.payload["messageId"]
                if not ok:
                    findings.add("wrong", f"{spec.label} {spec.job_id}: output {name} is not of its subject")


def _story(record: JobRecord) -> str:
    return " ".join(f"{e.target.value}({e.reason},a{e.attempt})" for e in record.history)
