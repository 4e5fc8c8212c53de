"""Settings and records for the queue tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec

from fleetpulse.config import NatsSettings, QueueSettings, ServerSettings, Settings
from fleetpulse.model.record import Record
from fleetpulse.queue.base import Queue

# Opens (or reopens) a queue. Keyword arguments override [queue] settings.
OpenQueue = Callable[..., Awaitable[Queue]]


def make_settings(
    backend: str, data_dir: Path, nats: NatsSettings | None = None, **queue_fields: Any
) -> Settings:
    queue = msgspec.structs.replace(QueueSettings(), backend=backend, **queue_fields)
    return Settings(
        server=ServerSettings(data_dir=str(data_dir)), queue=queue, nats=nats or NatsSettings()
    )


def make_records(device_id: str, first_ts_ms: int, count: int) -> list[Record]:
    return [
        Record(
            device_id=device_id,
            ts_ms=first_ts_ms + i,
            lat=52.5,
            lon=13.4,
            received_at_ms=first_ts_ms + i + 5,
            speed_kmh=float(i % 90),
        )
        for i in range(count)
    ]
