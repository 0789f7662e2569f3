"""``python -m bench.floor_worker``: the floor's host, a minimal raw-SDK worker process.

It polls with devhost's own queue listener (bench/host.json's batchSize, newBatchThreshold and
maxPollingInterval, the same receive lease), and for each message does what the floor needs:
read -> claim (If-Match) -> the job's work (bench/work.py) -> complete (If-Match) -> outcome send
(bench/baseline.py), then deletes the message. Storage clients are the app's ``StorageClients``.
Settings come from the environment (see bench/e2e.py). SIGTERM stops it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from pathlib import Path
from typing import Any, cast

from azure.storage.queue import QueueMessage
from azure.storage.queue.aio import QueueClient

from bench.baseline import RawJobs
from bench.work import analysis_of, output_name, summary_of
from devhost.hostconfig import load_host_config
from devhost.queue_listener import QueueListener
from devhost.queue_messages import MessageProcessor
from shared.store.clients import StorageClients
from shared.store.tenant_data import TenantFiles
from tests.support import make_settings


class FloorProcessor:
    """What devhost's MessageProcessor does for a function, reduced to the floor: run, then delete."""

    def __init__(self, raw: RawJobs, clients: StorageClients, documents: str, analysis: str):
        self.raw = raw
        self.clients = clients
        self.documents = documents
        self.analysis = analysis

    async def work(self, message: dict[str, Any]) -> dict[str, Any]:
        files = TenantFiles(self.clients, uuid.UUID(message["tenantId"]))
        subject = message["subjectId"]
        text = await files.read_text(self.documents, subject)
        analysis = analysis_of(subject, text)
        await files.write_json(self.analysis, output_name(subject, message["payload"]["tag"]), analysis)
        return summary_of(analysis)

    async def process(self, message: QueueMessage) -> None:
        await self.raw.process(str(message.content), self.work)
        await self.raw.jobs.delete_message(message.id, message.pop_receipt)


async def serve() -> None:
    env = os.environ
    clients = StorageClients.create(make_settings(env["AzureWebJobsStorage"]))
    jobs: QueueClient = clients.queue(env["FLOOR_QUEUE"])
    raw = RawJobs(clients.table(env["FLOOR_TABLE"]), jobs, clients.queue(env["FLOOR_OUTCOMES"]),
                  job_type="bench-analyze")
    processor = FloorProcessor(raw, clients, env["FLOOR_DOCUMENTS"], env["FLOOR_ANALYSIS"])
    options = load_host_config(Path(env["FLOOR_PROJECT_DIR"])).queues
    listener = QueueListener(jobs, cast(MessageProcessor, processor), options, float(env.get("FLOOR_LEASE", "600")))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, listener.stop)
    print("floor worker polling", flush=True)
    try:
        await listener.run()
        await listener.drain(10)
    finally:
        await clients.close()


if __name__ == "__main__":
    asyncio.run(serve())
