"""Settings and rows for the store tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from fleetpulse.config import PostgresSettings, ServerSettings, Settings, StoreSettings
from fleetpulse.model.event import Event
from fleetpulse.model.record import EnrichedRecord, Record
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.store.base import Store, VehicleSnapshot

# Opens (or reopens) a store. Keyword arguments override [store] settings.
OpenStore = Callable[..., Awaitable[Store]]


def make_settings(
    backend: str, data_dir: Path, postgres_dsn: str | None = None, **store_fields: Any
) -> Settings:
    """Return settings for ``backend``. The postgres store upgrades its fresh database."""
    store = msgspec.structs.replace(StoreSettings(), backend=backend, **store_fields)
    postgres = PostgresSettings()
    if postgres_dsn is not None:
        postgres = PostgresSettings(dsn=postgres_dsn, auto_upgrade=True)
    return Settings(server=ServerSettings(data_dir=str(data_dir)), store=store, postgres=postgres)


def make_enriched(device_id: str, ts_ms: int, distance_m: float = 10.0) -> EnrichedRecord:
    record = Record(device_id=device_id, ts_ms=ts_ms, lat=48.1, lon=11.5, received_at_ms=ts_ms + 40)
    return EnrichedRecord(record=record, distance_m=distance_m, speed_kmh=36.0, motion="moving")


def make_event(
    device_id: str, ts_ms: int, type_: str = "overspeed", severity: str = "warning"
) -> Event:
    return Event(
        device_id=device_id, ts_ms=ts_ms, type=type_, severity=severity, details={"n": ts_ms}
    )


def make_snapshot(device_id: str, last_ts_ms: int, state: bytes = b"state") -> VehicleSnapshot:
    view = VehicleView(
        device_id=device_id,
        last_ts_ms=last_ts_ms,
        last_received_at_ms=last_ts_ms + 40,
        motion="moving",
        status="normal",
        lat=48.1,
        lon=11.5,
    )
    return VehicleSnapshot(view=view, state=state)
