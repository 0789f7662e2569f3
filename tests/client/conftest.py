"""Fixtures of the client's unit tests: a scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.client.fake_api import FakeApi, serve


@pytest.fixture
def fake_api() -> Iterator[FakeApi]:
    with serve() as api:
        yield api
