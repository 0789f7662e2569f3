"""One e-mail is one job however its Message-ID is spelled (RFC 5322 angle brackets, domain case, spaces)."""

from __future__ import annotations

import uuid

import pytest

from jobs.email_process import normalized_message_id
from shared.engine.runtime import Runtime
from tests.engine.helpers import submit_job


@pytest.mark.parametrize(("spelled", "normal"), [
    ("abc@example.com", "abc@example.com"),
    ("<abc@example.com>", "abc@example.com"),
    ("  <abc@Example.COM> ", "abc@example.com"),
    ("ABC@example.com", "ABC@example.com"),  # the local part may be case-sensitive: kept
    ("a@b@Host.Example", "a@b@host.example"),  # the domain is what follows the last @
    ("no-at-sign", "no-at-sign"),
])
def test_a_message_id_has_one_spelling(spelled: str, normal: str) -> None:
    assert normalized_message_id(spelled) == normal


async def test_two_spellings_of_one_message_id_are_one_job_replayed(runtime: Runtime) -> None:
    subject = uuid.uuid4()
    first = await submit_job(runtime, "email-process", {"messageId": "abc@Example.com"}, subject)
    second = await submit_job(runtime, "email-process", {"messageId": " <abc@example.COM>"}, subject)
    assert second.replayed and second.record.job_id == first.record.job_id
    assert first.record.payload == {"messageId": "abc@example.com"}
