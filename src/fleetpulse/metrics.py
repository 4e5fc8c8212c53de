"""Prometheus metrics of every stage, in one registry served at ``GET /metrics``.

Counters are incremented once per batch with the batch's count, never per record, so
the hot path pays one call per batch.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
