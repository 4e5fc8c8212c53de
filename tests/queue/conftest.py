"""Fixtures for the queue tests: every backend in BACKENDS, opened on a fresh data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fleetpulse.config import NatsSettings
from fleetpulse.queue.base import Queue, open_queue
from tests.nats_server import NatsServer
from tests.nats_server import nats_server_fixture as nats_server_fixture
from tests.queue.queue_helpers import OpenQueue, make_settings

# Backends the contract tests run against; a new backend adds its name here.
BACKENDS = ["sqlite", "jetstream"]


@pytest.fixture(params=BACKENDS)
async def open_test_queue(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[OpenQueue]:
    """A function that opens (or reopens) the backend's queue on one data dir.

    The JetStream backend gets its own nats-server, shared by every queue of the test.

    Keyword arguments override ``[queue]`` settings. Queues still open at the end of
    the test are closed.
    """
    opened: list[Queue] = []
    nats = None
    if request.param == "jetstream":
        server: NatsServer = request.getfixturevalue("nats_server")
        nats = NatsSettings(url=server.url)

    async def open_(**queue_fields: Any) -> Queue:
        settings = make_settings(request.param, tmp_path / "data", nats, **queue_fields)
        queue = open_queue(settings)
        await queue.start()
        opened.append(queue)
        return queue

    yield open_
    for queue in opened:
        await queue.close()
