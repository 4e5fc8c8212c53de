"""The latest known state of a vehicle, as the query API shows it."""

from __future__ import annotations

import msgspec


class VehicleView(msgspec.Struct, gc=False):
    """The latest state fleetpulse has stored for one vehicle.

    ``last_ts_ms`` is the device time of the newest processed record and
    ``last_received_at_ms`` the server time it arrived. Position fields come from the
    newest record with a GPS fix.
    """

    device_id: str
    last_ts_ms: int
    last_received_at_ms: int
    motion: str
    status: str
    reasons: list[str] = msgspec.field(default_factory=list)
    lat: float | None = None
    lon: float | None = None
    fix_ts_ms: int | None = None
    speed_kmh: float | None = None
    heading_deg: float | None = None
    ignition: bool | None = None
    engine_rpm: float | None = None
    coolant_c: float | None = None
    fuel_pct: float | None = None
    battery_v: float | None = None
    odometer_m: float | None = None
    dtc: list[str] = msgspec.field(default_factory=list)
    geofences: list[str] = msgspec.field(default_factory=list)
    offline: bool = False
    trip_distance_m: float | None = None
    # Service intervals ([detectors] service_every_km, service_every_engine_h): whether a
    # service is due, and what is left to the next one. None without that interval.
    maintenance_due: bool = False
    service_in_km: float | None = None
    service_in_engine_h: float | None = None
