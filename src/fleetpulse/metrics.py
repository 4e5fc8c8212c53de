"""Prometheus metrics of every stage, in one registry served at ``GET /metrics``.

Counters are incremented once per batch with the batch's count, never per record, so
the hot path pays one call per batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import msgspec
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

REGISTRY = CollectorRegistry()

RECORDS_RECEIVED = Counter(
    "fleetpulse_records_received",
    "Records received by ingest, valid or not.",
    ["source"],
    registry=REGISTRY,
)
RECORDS_ACCEPTED = Counter(
    "fleetpulse_records_accepted",
    "Records that passed validation and are durable in the queue.",
    ["source"],
    registry=REGISTRY,
)
RECORDS_REJECTED = Counter(
    "fleetpulse_records_rejected",
    "Records or requests rejected by ingest, by reason code; each has a dead letter.",
    ["source", "reason"],
    registry=REGISTRY,
)
QUEUE_FULL = Counter(
    "fleetpulse_queue_full",
    "Requests answered 503 because the queue was at capacity.",
    ["source"],
    registry=REGISTRY,
)
OVERLOADED = Counter(
    "fleetpulse_ingest_overloaded",
    "Requests answered 503 overloaded because ingest.max_inflight_bytes was in progress.",
    ["source"],
    registry=REGISTRY,
)
STORAGE_FULL = Counter(
    "fleetpulse_storage_full",
    "Requests answered 503 storage_full because the queue's disk was full.",
    ["source"],
    registry=REGISTRY,
)
DATABASE_FULL = Gauge(
    "fleetpulse_database_full",
    "1 while the last commit to this SQLite file failed because its disk was full, else 0.",
    ["file"],
    registry=REGISTRY,
)
AUTH_REJECTED = Counter(
    "fleetpulse_auth_rejected",
    "API and WebSocket requests answered 401 or 403, by reason: missing_key, invalid_key "
    "or insufficient_scope.",
    ["reason"],
    registry=REGISTRY,
)
RECORDS_NO_FIX = Counter(
    "fleetpulse_records_no_fix",
    "Processed records without a GPS fix (valid=false or exactly 0,0).",
    registry=REGISTRY,
)
RECORDS_PROCESSED = Counter(
    "fleetpulse_records_processed",
    "Records taken from the queue and written to the store.",
    registry=REGISTRY,
)
RECORDS_DUPLICATE = Counter(
    "fleetpulse_records_duplicate",
    "Records whose (device_id, ts) had already been processed; stored once.",
    registry=REGISTRY,
)
RECORDS_LATE = Counter(
    "fleetpulse_records_late",
    "Records older than their vehicle's newest processed record: stored, no state change.",
    registry=REGISTRY,
)
EVENTS = Counter(
    "fleetpulse_events",
    "Events detected, by type.",
    ["type"],
    registry=REGISTRY,
)
QUEUE_DEPTH = Gauge(
    "fleetpulse_queue_depth_records",
    "Records published to the queue and not yet acknowledged by processing.",
    registry=REGISTRY,
)
PROCESSING_LAG = Gauge(
    "fleetpulse_processing_lag_seconds",
    "Seconds from receipt to store write of the oldest record in the last processed batch.",
    registry=REGISTRY,
)
VEHICLES_TRACKED = Gauge(
    "fleetpulse_vehicles_tracked",
    "Vehicles whose processing state is held in memory.",
    registry=REGISTRY,
)
LIVE_BUS_MESSAGES = Counter(
    "fleetpulse_live_bus_messages",
    "Messages of the NATS live bus by outcome: sent, failed (publish raised), dropped "
    "(backlog full), received, undecodable.",
    ["outcome"],
    registry=REGISTRY,
)
STAGE_SECONDS = Histogram(
    "fleetpulse_stage_seconds",
    "Time one batch spends in a stage: validate (with decoding), enqueue, fetch, process, "
    "store, ack.",
    ["stage"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)


# --- metrics of a child process ---------------------------------------------------------
#
# `fleetpulse run` processes records in a child process (roles/child.py), whose counters
# live in that process's REGISTRY. The child sends snapshots of its registry, and
# /metrics in the parent serves both merged, with each family once: counters and
# histograms are summed, and each gauge has one owner.

# Gauges that only the processor sets meaningfully. The parent's copies stay at their
# initial value, so the child's value is served.
CHILD_OWNED_GAUGES = frozenset({"fleetpulse_processing_lag_seconds", "fleetpulse_vehicles_tracked"})
# Gauges where a 1 in either process matters: a disk can fill under either writer.
MAX_GAUGES = frozenset({"fleetpulse_database_full"})


class FamilySnapshot(msgspec.Struct, array_like=True, gc=False):
    """One metric family of another process: name, help, type, unit and samples."""

    name: str
    documentation: str
    type: str
    unit: str
    samples: list[tuple[str, dict[str, str], float]]


class RemoteMetrics(Protocol):
    """Metrics of another process that /metrics and /healthz merge into this one's."""

    def latest_families(self) -> list[FamilySnapshot]:
        """Return the newest snapshot received, without waiting."""
        ...

    async def fresh_families(self) -> list[FamilySnapshot]:
        """Return a snapshot requested now, or the newest one if the request times out."""
        ...


_remote_sources: list[RemoteMetrics] = []


def add_remote_source(source: RemoteMetrics) -> None:
    """Merge ``source``'s metrics into /metrics of this process until it is removed."""
    _remote_sources.append(source)


def remove_remote_source(source: RemoteMetrics) -> None:
    """Stop merging ``source``'s metrics. Removing a source not added does nothing."""
    if source in _remote_sources:
        _remote_sources.remove(source)


def snapshot_families(registry: CollectorRegistry = REGISTRY) -> list[FamilySnapshot]:
    """Return every family of ``registry`` with its current samples."""
    return [
        FamilySnapshot(
            family.name,
            family.documentation,
            family.type,
            family.unit,
            [(sample.name, dict(sample.labels), sample.value) for sample in family.samples],
        )
        for family in registry.collect()
    ]


async def merged_registry() -> CollectorRegistry:
    """Return a registry of this process's metrics merged with every remote source's.

    Each remote source is asked for a fresh snapshot, so counters include everything
    the other process counted before this call.
    """
    remote = [await source.fresh_families() for source in list(_remote_sources)]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_MergedCollector(remote))
    return registry


def database_full_files() -> list[str]:
    """Return the SQLite files whose last commit failed on a full disk, in any process."""
    full = {
        sample.labels["file"]
        for family in DATABASE_FULL.collect()
        for sample in family.samples
        if sample.value
    }
    for source in list(_remote_sources):
        for family in source.latest_families():
            if family.name == "fleetpulse_database_full":
                full.update(labels["file"] for _, labels, value in family.samples if value)
    return sorted(full)


def total_counters(families: list[FamilySnapshot]) -> list[FamilySnapshot]:
    """Sum the counter and histogram families of several snapshots into one; drop gauges.

    A process that replaces an exited one keeps the exited one's totals this way.
    """
    totals: dict[str, FamilySnapshot] = {}
    for family in families:
        if family.type not in ("counter", "histogram"):
            continue
        total = totals.setdefault(
            family.name,
            FamilySnapshot(family.name, family.documentation, family.type, family.unit, []),
        )
        positions = {
            (name, _label_key(labels)): index
            for index, (name, labels, _) in enumerate(total.samples)
        }
        for name, labels, value in family.samples:
            position = positions.get((name, _label_key(labels)))
            if position is None:
                total.samples.append((name, labels, value))
            elif not name.endswith("_created"):
                _, _, old_value = total.samples[position]
                total.samples[position] = (name, labels, old_value + value)
    return list(totals.values())


class _MergedCollector(Collector):
    def __init__(self, remote: list[list[FamilySnapshot]]) -> None:
        self._remote = remote

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        remote_by_name: dict[str, list[FamilySnapshot]] = {}
        for families in self._remote:
            for family in families:
                remote_by_name.setdefault(family.name, []).append(family)
        for local in REGISTRY.collect():
            merged = Metric(local.name, local.documentation, local.type, local.unit)
            merged.samples = list(local.samples)
            for remote in remote_by_name.pop(local.name, []):
                merged.samples = _merge_samples(local.name, local.type, merged.samples, remote)
            yield merged
        # Families that only another process defines, in a mixed-version setup.
        for families in remote_by_name.values():
            first = families[0]
            merged = Metric(first.name, first.documentation, first.type, first.unit)
            for remote in families:
                merged.samples = _merge_samples(first.name, first.type, merged.samples, remote)
            yield merged


def _merge_samples(
    family_name: str, family_type: str, samples: list[Sample], remote: FamilySnapshot
) -> list[Sample]:
    by_key = {(sample.name, _label_key(sample.labels)): sample for sample in samples}
    merged = dict(by_key)
    for name, labels, value in remote.samples:
        key = (name, _label_key(labels))
        existing = merged.get(key)
        if existing is None:
            merged[key] = Sample(name, labels, value)
            continue
        merged[key] = existing._replace(
            value=_combine(family_name, family_type, name, existing.value, value)
        )
    return list(merged.values())


def _combine(
    family_name: str, family_type: str, sample_name: str, mine: float, theirs: float
) -> float:
    if sample_name.endswith("_created"):
        return min(mine, theirs)
    if family_type == "gauge":
        if family_name in CHILD_OWNED_GAUGES:
            return theirs
        if family_name in MAX_GAUGES:
            return max(mine, theirs)
        return mine
    return mine + theirs


def _label_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))
