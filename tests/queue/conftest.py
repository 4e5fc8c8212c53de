"""Fixtures for the queue tests: every backend in BACKENDS, opened on a fresh data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fleetpulse.queue.base import Queue, open_queue
from tests.queue.queue_helpers import OpenQueue, make_settings

# Backends the contract tests run against; a new backend adds its name here.
BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
async def open_test_queue(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[OpenQueue]:
    """A function that opens (or reopens) the backend's queue on one data dir.

    Keyword arguments override ``[queue]`` settings. Queues still open at the end of
    the test are closed.
    """
    opened: list[Queue] = []

    async def open_(**queue_fields: Any) -> Queue:
        queue = open_queue(make_settings(request.param, tmp_path / "data", **queue_fields))
        await queue.start()
        opened.append(queue)
        return queue

    yield open_
    for queue in opened:
        await queue.close()
