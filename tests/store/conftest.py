"""Fixtures for the store tests: every backend in BACKENDS, opened on a fresh data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fleetpulse.store.base import Store, open_store
from tests.store.store_helpers import OpenStore, make_settings

# Backends the contract tests run against; a new backend adds its name here.
BACKENDS = ["sqlite"]


@pytest.fixture(params=BACKENDS)
async def open_test_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[OpenStore]:
    """A function that opens (or reopens) the backend's store on one data dir.

    Keyword arguments override ``[store]`` settings. Stores still open at the end of
    the test are closed.
    """
    opened: list[Store] = []

    async def open_(**store_fields: Any) -> Store:
        store = open_store(make_settings(request.param, tmp_path / "data", **store_fields))
        await store.start()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()


@pytest.fixture
async def store(open_test_store: OpenStore) -> Store:
    return await open_test_store()
