"""The shared plausibility checks that every record a protocol decoder builds must pass."""

from __future__ import annotations

import math

from fleetpulse.config import Settings, load_settings
from fleetpulse.model.record import Record, RecordIn
from fleetpulse.model.timestamps import now_ms
from fleetpulse.model.validate import validate_record

# 2000-01-01T00:00:00Z: no test vector is older, and a decoder that misreads seconds as
# milliseconds (or the reverse) lands far outside this window.
MIN_TS_MS = 946_684_800_000
# One day ahead of now absorbs clock drift in captured frames.
MAX_FUTURE_MS = 86_400_000


def check_plausible(record: RecordIn, *, ts_window: bool = True) -> None:
    """Assert that a decoded record has values in physically plausible ranges.

    ``ts_window=False`` skips the timestamp window, for vectors whose timestamps are
    older than validation accepts.
    """
    assert -90.0 <= record.lat <= 90.0, f"lat {record.lat}"
    assert -180.0 <= record.lon <= 180.0, f"lon {record.lon}"
    if ts_window:
        ts_ms = record.ts if isinstance(record.ts, int) else None
        assert ts_ms is not None, f"ts {record.ts!r} is not epoch ms"
        assert MIN_TS_MS <= ts_ms <= now_ms() + MAX_FUTURE_MS, f"ts_ms {ts_ms}"
    if record.speed_kmh is not None:
        assert 0.0 <= record.speed_kmh <= 400.0, f"speed_kmh {record.speed_kmh}"
    if record.heading_deg is not None:
        assert 0.0 <= record.heading_deg <= 360.0, f"heading_deg {record.heading_deg}"
    if record.battery_v is not None:
        assert 0.0 <= record.battery_v <= 100.0, f"battery_v {record.battery_v}"
    for value in (record.lat, record.lon, record.speed_kmh, record.altitude_m):
        assert value is None or math.isfinite(value)


def check_accepted(
    record: RecordIn, received_at_ms: int, settings: Settings | None = None
) -> Record:
    """Assert the plausibility checks and that ``validate_record`` accepts the record.

    ``received_at_ms`` should be near the record's timestamp, so that old test vectors
    fall inside the accepted time window.
    """
    check_plausible(record, ts_window=False)
    result = validate_record(record, received_at_ms, settings or load_settings(environ={}))
    assert isinstance(result, Record), f"rejected: {result}"
    return result
