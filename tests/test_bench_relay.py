"""The benchmark's reusable pieces (bench/): the counting relay's request count, against a real
Azurite through the app's own storage clients, and the paired ratios and targets of the report.
No timing here: `make bench` measures; these only check that it counts and judges correctly."""

from __future__ import annotations

import uuid

import pytest

from bench.proxy import CountingProxy, RequestParser
from bench.report import Target, paired_ratio
from devhost.azurite import Azurite, connection_string
from shared.store.clients import StorageClients
from tests.support import make_settings

REQUESTS = (b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
            b"PUT /b HTTP/1.1\r\nContent-Length: 18\r\n\r\nGET /not/a/request"
            b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
            b"DELETE /d HTTP/1.1\r\n\r\n")


@pytest.mark.parametrize("piece", [1, 7, len(REQUESTS)])
def test_the_parser_counts_request_heads_and_skips_bodies_in_any_pieces(piece: int) -> None:
    parser = RequestParser()
    for start in range(0, len(REQUESTS), piece):
        parser.feed(REQUESTS[start:start + piece])
    assert parser.count == 4  # the body that looks like a request line is not one


async def test_the_relay_counts_every_storage_call_by_service(azurite: Azurite) -> None:
    proxy = CountingProxy({"blob": azurite.blob_port, "queue": azurite.queue_port, "table": azurite.table_port})
    await proxy.start()
    clients = StorageClients.create(make_settings(connection_string(proxy.ports["blob"], proxy.ports["queue"],
                                                                     proxy.ports["table"])))
    name = f"relay{uuid.uuid4().hex[:8]}"
    try:
        queue = clients.queue(name)
        await queue.create_queue()
        for i in range(3):
            await queue.send_message(f"m{i}")
        table = clients.table(name)
        await table.create_table()
        await table.create_entity({"PartitionKey": "p", "RowKey": "r", "body": "x" * 5000})
        assert dict(proxy.calls) == {"queue": 4, "table": 2}
        await queue.delete_queue()
        await table.delete_table()
    finally:
        await clients.close()
        await proxy.stop()


def test_ratios_pair_repetitions_and_targets_judge_each_direction() -> None:
    assert paired_ratio([2.0, 9.0, 4.0], [1.0, 3.0, 4.0]) == 2.0  # median of 2, 3, 1
    assert paired_ratio([1.0, None], [1.0, 2.0]) is None
    assert Target("faster", 1.31, 1.3, at_least=True).passed()
    assert not Target("cheaper", 1.01, 1.0, at_least=False).passed()
    assert Target("lost", 0.0, 0, at_least=False, unit="jobs").row()[-1] == "PASS"
    assert Target("unmeasured", None, 1.0, at_least=True).passed() is None
