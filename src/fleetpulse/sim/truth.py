"""Ground truth of a simulation: every injected behaviour, as JSON lines.

Each line is a TruthEntry, and the last line is a TruthSummary with ``"type": "summary"``.
``event`` names the server event type (``fleetpulse.model.vocabulary``) the episode
should produce with the default detector settings, or is null when none is expected.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import IO, Any, Final

import msgspec

log = logging.getLogger(__name__)

# Truth entry types. Bad records and duplicates are device faults the server must
# reject or deduplicate. The others are episodes of a vehicle.
SPEEDING: Final = "speeding"
HARSH_BRAKING: Final = "harsh_braking"
HARSH_ACCELERATION: Final = "harsh_acceleration"
ENGINE_FAULT: Final = "engine_fault"
ENGINE_OVERHEAT: Final = "engine_overheat"
LOW_FUEL: Final = "low_fuel"
REFUEL: Final = "refuel"
FUEL_THEFT: Final = "fuel_theft"
IDLING: Final = "idling"
TRIP: Final = "trip"
OUTAGE: Final = "outage"
GPS_JUMP: Final = "gps_jump"
BAD_RECORD: Final = "bad_record"
DUPLICATE: Final = "duplicate"
# Device faults of the evaluation scenarios. An odometer glitch is a record whose
# odometer reads 0. A clock skew entry, one per device, has times 0 and the offset of
# the device's clock in ``values["offset_ms"]``.
ODOMETER_GLITCH: Final = "odometer_glitch"
CLOCK_SKEW: Final = "clock_skew"
SUMMARY: Final = "summary"


class TruthEntry(msgspec.Struct):
    """One injected thing: which vehicle, what, when (device time, epoch ms) and values.

    ``complete`` is False when the episode was still going on as the run ended.
    """

    type: str
    device_id: str
    start_ms: int
    end_ms: int
    event: str | None = None
    complete: bool = True
    values: dict[str, Any] = msgspec.field(default_factory=dict)


class TruthSummary(msgspec.Struct, tag_field="type", tag=SUMMARY):
    """Totals of a run, written as the last line of the truth file."""

    seed: int
    vehicles: int
    rate_hz: float
    duration_s: float
    start_ms: int
    end_ms: int
    records_generated: int
    records_sent: int
    bad_records: int
    bad_records_by_reason: dict[str, int]
    duplicates: int
    entries_by_type: dict[str, int]


class TruthLog:
    """Writes truth entries to a JSONL file as they complete, and counts them.

    With ``path`` None nothing is written. ``keep=True`` also keeps the entries in
    ``entries``, which tests read.
    """

    def __init__(self, path: str | Path | None = None, keep: bool = False) -> None:
        self.path = None if path is None else Path(path)
        self.entries: list[TruthEntry] = []
        self.counts: Counter[str] = Counter()
        self.bad_by_reason: Counter[str] = Counter()
        self._keep = keep
        self._encoder = msgspec.json.Encoder()
        self._file: IO[bytes] | None = None
        if self.path is not None:
            self._file = self.path.open("wb")
            log.info("writing ground truth to %s", self.path)

    def add(self, entry: TruthEntry) -> None:
        self.counts[entry.type] += 1
        if entry.type == BAD_RECORD:
            self.bad_by_reason[str(entry.values["reason"])] += 1
        if self._keep:
            self.entries.append(entry)
        if self._file is not None:
            self._file.write(self._encoder.encode(entry) + b"\n")

    def close(self, summary: TruthSummary | None = None) -> None:
        """Write the summary line, if given, and close the file. Safe to call twice."""
        if self._file is None:
            return
        if summary is not None:
            self._file.write(self._encoder.encode(summary) + b"\n")
        self._file.close()
        self._file = None


def read_truth(path: str | Path) -> tuple[list[TruthEntry], TruthSummary | None]:
    """Read a truth file back: its entries and its summary line (None if the run broke off)."""
    entries: list[TruthEntry] = []
    summary: TruthSummary | None = None
    with Path(path).open("rb") as handle:
        for line in handle:
            if not line.strip():
                continue
            if b'"type":"summary"' in line:
                summary = msgspec.json.decode(line, type=TruthSummary)
            else:
                entries.append(msgspec.json.decode(line, type=TruthEntry))
    return entries, summary
