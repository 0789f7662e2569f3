"""The Celery side: kombu's Azure Storage Queues broker, Celery's Azure Block Blob result backend.

``celery -A bench.celery_app worker`` builds the app from the environment (``BENCH_CELERY_*``,
set by bench/e2e.py); the benchmark's client builds the same app with ``make_app``. The tasks
do the same work as the app's job (bench/work.py) with the blob SDK's synchronous client, the
one Celery's own backend uses: the document's properties, its download, an overwrite of the
output blob.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from azure.storage.blob import BlobServiceClient, ContentSettings
from celery import Celery  # type: ignore[import-untyped]

from bench.work import analysis_of, encode_json, output_name, summary_of

ACCOUNT = "devstoreaccount1"


@dataclass(frozen=True)
class CeleryConfig:
    connection_string: str  # the storage account's (blob and queue endpoints, account key)
    queue_endpoint: str  # http://host:port/devstoreaccount1
    account_key: str
    queue: str  # the task queue's name
    results_container: str
    polling_interval: float  # kombu's: seconds between polls of an empty queue

    @classmethod
    def from_env(cls) -> CeleryConfig:
        e = os.environ
        return cls(e["BENCH_CELERY_STORAGE"], e["BENCH_CELERY_QUEUE_ENDPOINT"], e["BENCH_CELERY_KEY"],
                   e["BENCH_CELERY_QUEUE"], e["BENCH_CELERY_RESULTS"], float(e["BENCH_CELERY_POLL"]))

    def env(self) -> dict[str, str]:
        return {"BENCH_CELERY_STORAGE": self.connection_string, "BENCH_CELERY_QUEUE_ENDPOINT": self.queue_endpoint,
                "BENCH_CELERY_KEY": self.account_key, "BENCH_CELERY_QUEUE": self.queue,
                "BENCH_CELERY_RESULTS": self.results_container, "BENCH_CELERY_POLL": str(self.polling_interval)}


class _Blobs:
    """One synchronous BlobServiceClient per process (the worker's threads share it)."""

    def __init__(self, connection_string: str):
        self.connection_string = connection_string

    @cached_property
    def service(self) -> BlobServiceClient:
        return BlobServiceClient.from_connection_string(self.connection_string)


def make_app(config: CeleryConfig, *, tasks: bool = False) -> Any:
    """The Celery app; the worker's registers the tasks, the client's sends them by name."""
    app = Celery("bench", broker=f"azurestoragequeues://{config.account_key}@{config.queue_endpoint}",
                 backend=f"azureblockblob://{config.connection_string}")
    app.conf.update(
        broker_transport_options={"polling_interval": config.polling_interval},
        azureblockblob_container_name=config.results_container,
        task_default_queue=config.queue,
        task_serializer="json", result_serializer="json", accept_content=["json"],
        worker_enable_remote_control=False,  # no pidbox fanout queues on the broker
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    if tasks:
        _register_tasks(app, _Blobs(config.connection_string))
    return app


def _register_tasks(app: Any, blobs: _Blobs) -> None:

    @app.task(name="bench.analyze")  # type: ignore[untyped-decorator]
    def analyze(tenant: str, subject: str, tag: str, documents: str, analysis_container: str) -> dict[str, Any]:
        source = blobs.service.get_blob_client(documents, f"{tenant}/{subject}")
        source.get_blob_properties()  # as the app's TenantFiles.read_bytes: the size check, then the download
        text = source.download_blob().readall().decode("utf-8")
        analysis = analysis_of(subject, text)
        target = blobs.service.get_blob_client(analysis_container, f"{tenant}/{output_name(subject, tag)}")
        target.upload_blob(encode_json(analysis), overwrite=True,
                           content_settings=ContentSettings(content_type="application/json"))
        return summary_of(analysis)

    @app.task(name="bench.sleep")  # type: ignore[untyped-decorator]
    def sleep(seconds: float) -> dict[str, Any]:
        time.sleep(seconds)
        return {"slept": seconds}


# The worker's app (``celery -A bench.celery_app``), built from the environment bench/e2e.py sets.
app = make_app(CeleryConfig.from_env(), tasks=True) if "BENCH_CELERY_STORAGE" in os.environ else None
