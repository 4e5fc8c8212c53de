"""Pre-encoded ``POST /v1/telemetry`` requests for the load benchmark.

Every request is built as raw HTTP/1.1 bytes before the clock starts, so sending one
costs the load process a socket write and nothing else. Each connection owns its own
vehicles and sends their records in device-time order, so no record reaches the server
out of order for its vehicle, whatever the interleaving of connections.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass

import msgspec

# Vehicles start within this distance of the centre: a metropolitan fleet.
START_RADIUS_M = 20_000.0
CENTRE_LAT = 48.137
CENTRE_LON = 11.575
METRES_PER_DEG_LAT = 111_320.0
# Urban to motorway speeds, below the default overspeed limit of 120 km/h.
MIN_SPEED_KMH = 10.0
MAX_SPEED_KMH = 110.0
# Per-second changes stay far below the harsh braking and acceleration thresholds.
MAX_SPEED_STEP_KMH = 2.0
MAX_TURN_DEG = 5.0
FUEL_USE_PCT_PER_KM = 0.01

JSON_TYPE = b"application/json"
NDJSON_TYPE = b"application/x-ndjson"


class BenchRecord(msgspec.Struct):
    """The fields a typical tracker sends once per second, in the server's wire names."""

    device_id: str
    ts: int
    lat: float
    lon: float
    speed_kmh: float
    heading_deg: float
    ignition: bool
    odometer_m: float
    fuel_pct: float
    battery_v: float


@dataclass
class Vehicle:
    """The simulated kinematic state of one vehicle."""

    device_id: str
    lat: float
    lon: float
    speed_kmh: float
    heading_deg: float
    odometer_m: float
    fuel_pct: float

    def advance_1s(self, rng: random.Random) -> None:
        """Move the vehicle along its heading for one second and vary speed and heading."""
        distance_m = self.speed_kmh / 3.6
        heading_rad = math.radians(self.heading_deg)
        self.lat += distance_m * math.cos(heading_rad) / METRES_PER_DEG_LAT
        self.lon += (
            distance_m * math.sin(heading_rad)
            / (METRES_PER_DEG_LAT * math.cos(math.radians(self.lat)))
        )
        self.odometer_m += distance_m
        self.fuel_pct = max(0.0, self.fuel_pct - distance_m / 1000.0 * FUEL_USE_PCT_PER_KM)
        step_kmh = rng.uniform(-MAX_SPEED_STEP_KMH, MAX_SPEED_STEP_KMH)
        self.speed_kmh = min(MAX_SPEED_KMH, max(MIN_SPEED_KMH, self.speed_kmh + step_kmh))
        self.heading_deg = (self.heading_deg + rng.uniform(-MAX_TURN_DEG, MAX_TURN_DEG)) % 360.0


@dataclass
class RequestPool:
    """The requests of one connection, in sending order.

    ``markers[i]`` is the device id and ``ts`` (epoch ms) of the last record of request
    ``i``: once the query API shows that ``ts`` for that vehicle, the whole request is
    visible, because the connection sends each vehicle's records in order.
    """

    requests: list[bytes]
    record_counts: list[int]
    markers: list[tuple[str, int]]


def new_vehicle(device_id: str, rng: random.Random) -> Vehicle:
    """Place a vehicle at a random point near the centre, already moving."""
    distance_m = START_RADIUS_M * math.sqrt(rng.random())
    bearing_rad = rng.uniform(0.0, 2.0 * math.pi)
    lat = CENTRE_LAT + distance_m * math.cos(bearing_rad) / METRES_PER_DEG_LAT
    lon = CENTRE_LON + distance_m * math.sin(bearing_rad) / (
        METRES_PER_DEG_LAT * math.cos(math.radians(CENTRE_LAT))
    )
    return Vehicle(
        device_id=device_id,
        lat=lat,
        lon=lon,
        speed_kmh=rng.uniform(30.0, 90.0),
        heading_deg=rng.uniform(0.0, 360.0),
        odometer_m=rng.uniform(1e6, 3e8),
        fuel_pct=rng.uniform(40.0, 100.0),
    )


def build_pool(
    device_ids: list[str],
    record_count: int,
    batch: int,
    ndjson: bool,
    seed: int,
    end_ms: int | None = None,
) -> RequestPool:
    """Build ``record_count`` records of ``device_ids`` as requests of ``batch`` records.

    Each vehicle sends one record per second of device time, and the newest second is
    ``end_ms`` (default: now), so every timestamp lies within the last
    ``record_count / len(device_ids)`` seconds. ``batch == 1`` sends a bare JSON object.
    """
    records = build_records(device_ids, record_count, seed, end_ms)
    return _encode_requests(records, batch, ndjson)


def build_records(
    device_ids: list[str], record_count: int, seed: int, end_ms: int | None = None
) -> list[BenchRecord]:
    """Build ``record_count`` records of ``device_ids``, one per vehicle per second.

    The records are in device-time order, all vehicles' records of one second together,
    and the newest second is ``end_ms`` (default: now).
    """
    if not device_ids:
        raise ValueError("a request pool needs at least one vehicle")
    rng = random.Random(seed)
    vehicles = [new_vehicle(device_id, rng) for device_id in device_ids]
    seconds = math.ceil(record_count / len(vehicles))
    if end_ms is None:
        end_ms = time.time_ns() // 1_000_000
    first_ms = end_ms - (seconds - 1) * 1000

    records: list[BenchRecord] = []
    for second in range(seconds):
        ts_ms = first_ms + second * 1000
        for vehicle in vehicles:
            records.append(_record(vehicle, ts_ms))
            vehicle.advance_1s(rng)
    del records[record_count:]
    return records


def _record(vehicle: Vehicle, ts_ms: int) -> BenchRecord:
    return BenchRecord(
        device_id=vehicle.device_id,
        ts=ts_ms,
        lat=round(vehicle.lat, 6),
        lon=round(vehicle.lon, 6),
        speed_kmh=round(vehicle.speed_kmh, 1),
        heading_deg=round(vehicle.heading_deg, 1),
        ignition=True,
        odometer_m=round(vehicle.odometer_m, 1),
        fuel_pct=round(vehicle.fuel_pct, 2),
        battery_v=13.8,
    )


def _encode_requests(records: list[BenchRecord], batch: int, ndjson: bool) -> RequestPool:
    encoder = msgspec.json.Encoder()
    pool = RequestPool(requests=[], record_counts=[], markers=[])
    for start in range(0, len(records), batch):
        chunk = records[start : start + batch]
        if ndjson:
            body = b"\n".join(encoder.encode(record) for record in chunk) + b"\n"
        elif batch == 1:
            body = encoder.encode(chunk[0])
        else:
            body = encoder.encode(chunk)
        content_type = NDJSON_TYPE if ndjson else JSON_TYPE
        pool.requests.append(http_post(b"/v1/telemetry", content_type, body))
        pool.record_counts.append(len(chunk))
        pool.markers.append((chunk[-1].device_id, chunk[-1].ts))
    return pool


def http_post(path: bytes, content_type: bytes, body: bytes) -> bytes:
    """Return a complete keep-alive HTTP/1.1 POST request as bytes."""
    head = (
        b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type
        + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    return head + body


def http_get(path: str) -> bytes:
    """Return a complete keep-alive HTTP/1.1 GET request as bytes."""
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
