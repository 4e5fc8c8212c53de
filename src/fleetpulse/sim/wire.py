"""The record as a device sends it to ``POST /v1/telemetry``.

Field names and units are those of ``fleetpulse.model.record.RecordIn``. Optional fields
that are None are left out of the JSON instead of being sent as null.
"""

from __future__ import annotations

from typing import Any

import msgspec


class DeviceRecord(msgspec.Struct, omit_defaults=True):
    """One telemetry record on the wire. ``ts`` is epoch ms or RFC 3339 with an offset."""

    device_id: str
    ts: int | str
    lat: float
    lon: float
    speed_kmh: float | None = None
    heading_deg: float | None = None
    altitude_m: float | None = None
    accuracy_m: float | None = None
    ignition: bool | None = None
    engine_rpm: float | None = None
    coolant_c: float | None = None
    fuel_pct: float | None = None
    battery_v: float | None = None
    odometer_m: float | None = None
    dtc: list[str] | None = None
    valid: bool | None = None
    attributes: dict[str, Any] | None = None


def encode_batch(records: list[Any]) -> bytes:
    """Encode a batch of DeviceRecords and plain dicts as one JSON array."""
    return _ENCODER.encode(records)


_ENCODER = msgspec.json.Encoder()
