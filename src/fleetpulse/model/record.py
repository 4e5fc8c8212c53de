"""Telemetry records: the wire form a device sends, the validated form, the enriched form.

Units are part of every field name. Times inside fleetpulse are integer epoch
milliseconds (``*_ms``), always UTC.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

# A device id is 1-64 printable characters and not only spaces. Excluded: C0 and C1
# control characters, DEL, and the invisible Unicode format characters (zero-width
# spaces and joiners, bidirectional overrides, line and paragraph separators, the BOM),
# which would make two ids look alike on screen.
DEVICE_ID_PATTERN = (
    r"^(?!\s*$)[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]+$"
)
DEVICE_ID_MAX_LENGTH = 64

DeviceId = Annotated[
    str, msgspec.Meta(min_length=1, max_length=DEVICE_ID_MAX_LENGTH, pattern=DEVICE_ID_PATTERN)
]
Latitude = Annotated[float, msgspec.Meta(ge=-90.0, le=90.0)]
Longitude = Annotated[float, msgspec.Meta(ge=-180.0, le=180.0)]
SpeedKmh = Annotated[float, msgspec.Meta(ge=0.0, le=400.0)]
HeadingDeg = Annotated[float, msgspec.Meta(ge=0.0, le=360.0)]
# From the Dead Sea shore to well above any road.
AltitudeM = Annotated[float, msgspec.Meta(ge=-500.0, le=10_000.0)]
AccuracyM = Annotated[float, msgspec.Meta(ge=0.0, le=100_000.0)]
EngineRpm = Annotated[float, msgspec.Meta(ge=0.0, le=20_000.0)]
CoolantC = Annotated[float, msgspec.Meta(ge=-60.0, le=200.0)]
FuelPct = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
# 0-100 V covers 12 V cars, 24 V trucks and 48 V systems with margin.
BatteryV = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
# Ten million kilometres: more than any vehicle drives.
OdometerM = Annotated[float, msgspec.Meta(ge=0.0, le=1e10)]
# OBD-II codes are 5 characters; manufacturer codes with suffixes stay under 16.
FaultCode = Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
FaultCodes = Annotated[list[FaultCode], msgspec.Meta(max_length=32)]


class RecordIn(msgspec.Struct, forbid_unknown_fields=True):
    """One record as a device sends it over the JSON API.

    ``ts`` is RFC 3339 with an explicit offset or integer epoch milliseconds.
    Range checks that msgspec can express live in the field types above; the
    timestamp and the attribute bounds are checked by ``fleetpulse.model.validate``.
    """

    device_id: DeviceId
    ts: int | str
    lat: Latitude
    lon: Longitude
    speed_kmh: SpeedKmh | None = None
    heading_deg: HeadingDeg | None = None
    altitude_m: AltitudeM | None = None
    accuracy_m: AccuracyM | None = None
    ignition: bool | None = None
    engine_rpm: EngineRpm | None = None
    coolant_c: CoolantC | None = None
    fuel_pct: FuelPct | None = None
    battery_v: BatteryV | None = None
    odometer_m: OdometerM | None = None
    dtc: FaultCodes | None = None
    valid: bool | None = None
    attributes: dict[str, Any] | None = None


class Record(msgspec.Struct, array_like=True, gc=False):
    """A validated record, as the queue carries it and the processor reads it.

    ``array_like`` keeps the queue's msgpack encoding compact; ``gc=False`` is safe
    because a record never references itself.
    """

    device_id: str
    ts_ms: int
    lat: float
    lon: float
    received_at_ms: int
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
    source: str = "http"

    @property
    def has_fix(self) -> bool:
        """Whether the position is a real GPS fix: not flagged invalid and not exactly 0,0."""
        return self.valid is not False and not (self.lat == 0.0 and self.lon == 0.0)


class EnrichedRecord(msgspec.Struct, gc=False):
    """A record after the processing chain: what it adds is stored beside the record."""

    record: Record
    distance_m: float = 0.0
    # Speed used by the detectors: reported by the device, or derived from the fixes.
    speed_kmh: float | None = None
    motion: str = "parked"
    status: str = "normal"
    reasons: list[str] = msgspec.field(default_factory=list)
    flags: list[str] = msgspec.field(default_factory=list)


class DeadLetter(msgspec.Struct, gc=False):
    """A rejected record or request, kept with its reason for an operator to inspect."""

    received_at_ms: int
    reason: str
    detail: str
    source: str
    raw: str
    device_id: str | None = None
    index: int | None = None
