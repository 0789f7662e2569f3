"""host.json parsing, settings precedence, ``%Setting%`` expressions and message encoding helpers."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from devhost.errors import DevHostError
from devhost.functions import queue_name
from devhost.hostconfig import DEFAULT_FUNCTION_TIMEOUT, parse_host_config, parse_timespan
from devhost.queue_clients import decode_body, encode_body
from devhost.queue_messages import poison_queue_name
from devhost.settings import apply_settings, read_settings_file, remove_settings, resolve, storage_connection_string


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("00:01:00", 60.0), ("00:00:00.100", 0.1), ("00:00:00.500", 0.5), ("00:00:00.5", 0.5), ("00:00:02", 2.0),
     ("01:02:03", 3723.0), ("1.00:00:00", 86400.0)],
)
def test_timespans(text: str, seconds: float) -> None:
    assert parse_timespan(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["1:2", "00:60:00", "abc", "00:00:61"])
def test_invalid_timespans(text: str) -> None:
    with pytest.raises(DevHostError):
        parse_timespan(text)


def test_queue_defaults() -> None:
    config = parse_host_config({"version": "2.0"})
    assert config.route_prefix == "api"
    assert config.function_timeout == DEFAULT_FUNCTION_TIMEOUT
    queues = config.queues
    assert (queues.batch_size, queues.new_batch_threshold, queues.max_dequeue_count) == (16, 8, 5)
    assert (queues.max_polling_interval, queues.visibility_timeout, queues.message_encoding) == (60.0, 0.0, "base64")


def test_queue_options_and_case_insensitive_keys() -> None:
    config = parse_host_config({
        "functionTimeout": "00:10:00",
        "Extensions": {
            "HTTP": {"routePrefix": ""},
            "queues": {"BatchSize": 6, "maxPollingInterval": "00:00:02", "visibilityTimeout": "00:00:30",
                       "maxDequeueCount": 2, "messageEncoding": "None"},
        },
    })
    assert config.route_prefix == ""
    assert config.function_timeout == 600.0
    q = config.queues
    assert (q.batch_size, q.new_batch_threshold, q.max_polling_interval) == (6, 3, 2.0)
    assert (q.visibility_timeout, q.max_dequeue_count, q.message_encoding) == (30.0, 2, "none")
    assert parse_host_config({"functionTimeout": "-1"}).function_timeout is None


@pytest.mark.parametrize(
    "queues",
    [{"batchSize": 0}, {"batchSize": 33}, {"maxPollingInterval": "00:00:00.050"}, {"messageEncoding": "utf8"},
     {"maxDequeueCount": "5"}],
)
def test_invalid_queue_options(queues: dict[str, object]) -> None:
    with pytest.raises(DevHostError):
        parse_host_config({"extensions": {"queues": queues}})


def test_settings_file_and_precedence(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"A": "file", "B": "file", "N": 3}}), encoding="utf-8")
    environ = {"A": "env"}
    values = read_settings_file(path)
    added = apply_settings(values, environ)
    assert environ == {"A": "env", "B": "file", "N": "3"}
    assert added == {"B": "file", "N": "3"}
    remove_settings(added, environ)
    assert environ == {"A": "env"}
    assert read_settings_file(tmp_path / "missing.json") == {}


def test_encrypted_settings_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": True, "Values": {}}), encoding="utf-8")
    with pytest.raises(DevHostError, match="encrypted"):
        read_settings_file(path)


def test_expressions() -> None:
    environ = {"JOBS_QUEUE": "jobs", "SCHEDULE": "*/5 * * * * *"}
    assert resolve("%JOBS_QUEUE%", environ) == "jobs"
    assert resolve("%JOBS_QUEUE%-poison", environ) == "jobs-poison"
    assert resolve("plain", environ) == "plain"
    assert resolve("%SCHEDULE%", environ) == "*/5 * * * * *"
    with pytest.raises(DevHostError, match="MISSING"):
        resolve("%MISSING%-x", environ)


def test_queue_names_are_normalised_and_validated() -> None:
    assert queue_name("%Q%", {"Q": "Jobs"}) == "jobs"
    for bad in ("ab", "a--b", "-ab", "ab-", "a_b", "x" * 64):
        with pytest.raises(DevHostError):
            queue_name(bad, {})


def test_connection_strings() -> None:
    assert storage_connection_string(None, {"AzureWebJobsStorage": "X=1"}) == "X=1"
    assert storage_connection_string("Other", {"Other": "Y=2"}) == "Y=2"
    development = storage_connection_string(None, {"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1" in development
    with pytest.raises(DevHostError, match="AzureWebJobsStorage"):
        storage_connection_string("AzureWebJobsStorage", {})


def test_poison_queue_names() -> None:
    assert poison_queue_name("jobs") == "jobs-poison"
    assert poison_queue_name("jobs-poison") is None
    assert poison_queue_name("x" * 56) == "x" * 56 + "-poison"  # exactly 63
    assert poison_queue_name("x" * 57) is None


def test_message_encoding() -> None:
    text = '{"jobId": "1", "note": "\u00e9"}'
    encoded = encode_body(text, "base64")
    assert base64.b64decode(encoded).decode("utf-8") == text
    assert decode_body(encoded, "base64") == text.encode("utf-8")
    assert decode_body("not base64!", "base64") is None
    assert decode_body("\u00e9\u00e9\u00e9\u00e9", "base64") is None
    assert decode_body("plain", "none") == b"plain"
    assert encode_body(b"\x00\x01", "base64") == "AAE="
    assert encode_body("plain", "none") == "plain"


def test_the_projects_host_json_polls_idle_queues_at_most_every_half_second() -> None:
    """host.json's maxPollingInterval is the latency floor of an idle queue (docs/operations.md#idle-cost)."""
    config = parse_host_config(json.loads((Path(__file__).parents[2] / "host.json").read_text()))
    assert config.queues.max_polling_interval == pytest.approx(0.5)
