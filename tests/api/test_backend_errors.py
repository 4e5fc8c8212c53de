"""API responses while the store fails: 503 JSON with Retry-After, logged once per interval."""

from __future__ import annotations

import logging

import pytest

from fleetpulse.errors import StoreError
from fleetpulse.model.vehicle import VehicleView
from tests.api.conftest import Pipeline


async def _store_down() -> list[VehicleView]:
    raise StoreError("vehicles failed: connection to postgres db:5432/fleet failed (test)")


async def test_store_error_503_json(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline.server.store, "vehicles", _store_down)

    response = await pipeline.client.get("/v1/fleet/summary")

    assert response.status_code == 503
    assert response.headers["content-type"] == "application/json"
    assert response.headers["retry-after"] == "5"
    error = response.json()["error"]
    assert error["code"] == "store_unavailable"
    assert "connection to postgres db:5432/fleet failed" in error["message"]


async def test_store_error_logged_once(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(pipeline.server.store, "vehicles", _store_down)
    # A fresh interval, whatever an earlier test of this process logged.
    monkeypatch.setattr("fleetpulse.api.errors._backend_error_log.logged_at", -1e9)

    with caplog.at_level(logging.WARNING, logger="fleetpulse.api.errors"):
        for _ in range(3):
            assert (await pipeline.client.get("/v1/fleet/summary")).status_code == 503

    warnings = [r for r in caplog.records if r.name == "fleetpulse.api.errors"]
    assert len(warnings) == 1
    assert warnings[0].exc_info is None
    assert "store_unavailable" in warnings[0].getMessage()
