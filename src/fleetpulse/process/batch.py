"""Pure batch processing: records in, a ``ProcessedBatch`` for the store out.

No I/O happens here, so tests drive it directly. ``process/engine.py`` adds the queue,
the store and the asyncio task around it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

from fleetpulse import metrics
from fleetpulse.config import Settings
from fleetpulse.model.event import Event, Trip
from fleetpulse.model.record import EnrichedRecord, Record
from fleetpulse.model.vocabulary import DETAIL_ONGOING
from fleetpulse.process.chain import Chain, build_chain
from fleetpulse.process.detectors.base import MS_PER_S
from fleetpulse.process.detectors.offline import ONLINE, detect_offline
from fleetpulse.process.late import enrich_late
from fleetpulse.process.sample import Sample
from fleetpulse.process.state import VehicleState, encode_state
from fleetpulse.process.trips import open_trip
from fleetpulse.process.view import build_view, update_readings
from fleetpulse.store.base import ProcessedBatch, VehicleSnapshot

log = logging.getLogger(__name__)

# Recent record times kept per vehicle to recognise a duplicate among older records. That
# covers a redelivered minute of a device that reports every second. An older duplicate is
# treated as late, and the store still keeps one copy.
# NOTE: a redelivered batch longer than this window is counted in RECORDS_LATE, not
# RECORDS_DUPLICATE.
DUPLICATE_WINDOW = 64

# Seconds of processing between two voluntary releases of the GIL. The engine runs this
# function in a worker thread that never blocks. Without the releases, the event loop and
# the SQLite writer threads wait up to the interpreter's switch interval (5 ms by
# default) each time they return from I/O and need the GIL. A release is checked after
# each vehicle's records, so one vehicle with a long run of records can hold it longer.
YIELD_INTERVAL_S = 0.0005

_by_ts = attrgetter("ts_ms")


@dataclass(slots=True)
class _Counts:
    duplicate: int = 0
    late: int = 0
    no_fix: int = 0


def process_records(
    states: dict[str, VehicleState],
    records: Sequence[Record],
    settings: Settings,
    now_ms: int,
    chain: Chain | None = None,
) -> ProcessedBatch:
    """Process a batch of records of any vehicles and return what to store.

    ``states`` is updated in place, and a vehicle without an entry starts fresh. Each
    vehicle's records are processed in ``ts_ms`` order. A record with the time of a
    processed one is a duplicate and is left out. A record older than the newest
    processed one is late: it is stored with flag ``late``, but it changes no step or
    detector state and produces no events. ``now_ms`` is the wall-clock time, which
    decides whether a vehicle's new records end its offline period. Pass ``chain`` to
    reuse one built by ``build_chain``.
    """
    active_chain = chain if chain is not None else build_chain(settings)
    by_vehicle: dict[str, list[Record]] = {}
    for record in records:
        group = by_vehicle.get(record.device_id)
        if group is None:
            by_vehicle[record.device_id] = [record]
        else:
            group.append(record)

    batch = ProcessedBatch()
    counts = _Counts()
    clock = time.perf_counter
    yield_at = clock() + YIELD_INTERVAL_S
    for device_id, group in by_vehicle.items():
        vehicle = states.get(device_id)
        if vehicle is None:
            vehicle = states[device_id] = VehicleState(device_id=device_id)
        _process_vehicle(vehicle, group, active_chain, settings, now_ms, batch, counts)
        if clock() >= yield_at:
            # Lets a thread that waits for the GIL run now (see YIELD_INTERVAL_S). In a
            # loop on the 2-core benchmark VM, one sleep took about 70 us of wall time
            # and 15 us of CPU.
            time.sleep(0)
            yield_at = clock() + YIELD_INTERVAL_S

    _count(batch, counts)
    return batch


def sweep_offline(
    states: dict[str, VehicleState], settings: Settings, now_ms: int
) -> ProcessedBatch:
    """Mark vehicles silent for ``process.offline_after_s`` offline and return what to store."""
    batch = ProcessedBatch()
    for vehicle in states.values():
        if vehicle.last_ts_ms is None:
            continue
        offline, events = detect_offline(
            vehicle.offline,
            vehicle.device_id,
            vehicle.last_ts_ms,
            vehicle.last_received_at_ms,
            now_ms,
            settings,
        )
        if not events:
            continue
        vehicle.offline = offline
        batch.events.extend(events)
        batch.vehicles.append(_snapshot(vehicle))
    _count(batch, _Counts())
    return batch


def _process_vehicle(
    vehicle: VehicleState,
    group: list[Record],
    chain: Chain,
    settings: Settings,
    now_ms: int,
    batch: ProcessedBatch,
    counts: _Counts,
) -> None:
    group.sort(key=_by_ts)
    last_ts_ms = vehicle.last_ts_ms
    recent_ts_ms = vehicle.recent_ts_ms
    recent: set[int] | None = None
    received_at_ms = vehicle.last_received_at_ms
    new_records: list[EnrichedRecord] = []

    for record in group:
        ts_ms = record.ts_ms
        if last_ts_ms is not None and ts_ms <= last_ts_ms:
            # Only records at or before the newest processed time need the set of recent ones.
            if recent is None:
                recent = set(recent_ts_ms)
            if ts_ms == last_ts_ms or ts_ms in recent:
                counts.duplicate += 1
                continue
            recent.add(ts_ms)
            recent_ts_ms.append(ts_ms)
            batch.records.append(enrich_late(record, settings))
            counts.late += 1
        else:
            gap_s = (ts_ms - last_ts_ms) / MS_PER_S if last_ts_ms is not None else None
            # Positional arguments: msgspec builds a struct faster from them than from keywords.
            sample = Sample(record, EnrichedRecord(record), gap_s)
            try:
                emitted = chain.run(vehicle, sample, settings)
            except Exception:
                # A failing enrichment step is a bug, but the record is still stored as
                # far as it was enriched.
                log.exception(
                    "processing step failed, record stored as enriched so far: vehicle=%s ts_ms=%s",
                    vehicle.device_id,
                    ts_ms,
                )
            else:
                if emitted:
                    _add_emitted(emitted, batch)
            last_ts_ms = ts_ms
            recent_ts_ms.append(ts_ms)
            new_records.append(sample.enriched)
            batch.records.append(sample.enriched)

        if not record.has_fix:
            counts.no_fix += 1
        if record.received_at_ms > received_at_ms:
            received_at_ms = record.received_at_ms

    if len(recent_ts_ms) > DUPLICATE_WINDOW:
        del recent_ts_ms[:-DUPLICATE_WINDOW]
    # A group of duplicates changes nothing, so the vehicle needs no new snapshot.
    if last_ts_ms == vehicle.last_ts_ms and received_at_ms == vehicle.last_received_at_ms:
        return

    vehicle.last_ts_ms = last_ts_ms
    vehicle.last_received_at_ms = received_at_ms
    vehicle.readings = update_readings(vehicle.readings, new_records)
    offline_after_ms = settings.process.offline_after_s * MS_PER_S
    if vehicle.offline.offline and now_ms - received_at_ms < offline_after_ms:
        vehicle.offline = ONLINE
    if new_records:
        trip = open_trip(vehicle.trip, vehicle.device_id)
        if trip is not None:
            batch.trips.append(trip)
    batch.vehicles.append(_snapshot(vehicle))


def _add_emitted(emitted: Sequence[Event | Trip], batch: ProcessedBatch) -> None:
    for item in emitted:
        if type(item) is Trip:
            batch.trips.append(item)
        else:
            assert isinstance(item, Event)
            batch.events.append(item)


def _snapshot(vehicle: VehicleState) -> VehicleSnapshot:
    return VehicleSnapshot(view=build_view(vehicle), state=encode_state(vehicle))


def _count(batch: ProcessedBatch, counts: _Counts) -> None:
    if counts.duplicate:
        metrics.RECORDS_DUPLICATE.inc(counts.duplicate)
    if counts.late:
        metrics.RECORDS_LATE.inc(counts.late)
    if counts.no_fix:
        metrics.RECORDS_NO_FIX.inc(counts.no_fix)
    if batch.events:
        by_type: dict[str, int] = {}
        for event in batch.events:
            # The closing copy of an overspeed or harsh episode updates an event already
            # counted when the episode was confirmed.
            if event.details.get(DETAIL_ONGOING) is False:
                continue
            by_type[event.type] = by_type.get(event.type, 0) + 1
        for event_type, count in by_type.items():
            metrics.EVENTS.labels(event_type).inc(count)
