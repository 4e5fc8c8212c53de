"""Tests of IngestService: publishing, dead letters, metrics and whole-request errors.

The queue and store are the in-memory fakes of conftest.py. The real SQLite backends
are tested in tests/queue and tests/store, and the end-to-end tests use them.
"""

from __future__ import annotations

import pytest

from fleetpulse import metrics
from fleetpulse.errors import QueueFullError, StoreError
from fleetpulse.ingest.service import IngestRequestError, IngestService
from fleetpulse.model.record import RecordIn
from fleetpulse.model.timestamps import now_ms
from fleetpulse.model.validate import Reject, validate_record
from fleetpulse.model.vocabulary import (
    INVALID_JSON,
    OUT_OF_RANGE,
    TOO_LARGE,
    TS_NO_TIMEZONE,
    UNSUPPORTED_MEDIA_TYPE,
)
from tests.ingest.conftest import (
    MemoryQueue,
    MemoryStore,
    json_body,
    make_settings,
    ndjson_body,
    record,
)

JSON = "application/json"


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


async def test_accepted_records_published(service: IngestService, queue: MemoryQueue) -> None:
    result = await service.ingest_body(json_body(record(), record(device_id="b")), JSON)

    assert result.accepted == 2
    assert result.rejected == 0
    assert [r.device_id for r in queue.records] == ["truck-1", "b"]
    assert queue.publish_calls == 1


async def test_received_at_shared_by_request(service: IngestService, queue: MemoryQueue) -> None:
    before_ms = now_ms()
    await service.ingest_body(json_body(record(), record(), record()), JSON)
    after_ms = now_ms()

    received = {r.received_at_ms for r in queue.records}
    assert len(received) == 1
    assert before_ms <= received.pop() <= after_ms


async def test_rejects_written_as_dead_letters(
    service: IngestService, queue: MemoryQueue, store: MemoryStore
) -> None:
    body = json_body(record(), record(device_id="bad", lat=99.0), record(ts="2026-05-09T10:00:00"))

    result = await service.ingest_body(body, JSON, source="unit")

    assert result.accepted == 1
    assert result.rejected == 2
    assert [(e.index, e.reason) for e in result.errors] == [(1, OUT_OF_RANGE), (2, TS_NO_TIMEZONE)]
    assert len(store.letters) == 2
    letter = store.letters[0]
    assert letter.reason == OUT_OF_RANGE
    assert letter.index == 1
    assert letter.device_id == "bad"
    assert letter.source == "unit"
    assert '"lat":99.0' in letter.raw
    assert letter.received_at_ms == queue.records[0].received_at_ms


async def test_all_rejected_skips_publish(
    service: IngestService, queue: MemoryQueue, store: MemoryStore
) -> None:
    result = await service.ingest_body(json_body(record(lat=-91.0)), JSON)

    assert result.accepted == 0
    assert queue.publish_calls == 0
    assert len(store.letters) == 1


async def test_metrics_counted_per_batch(service: IngestService) -> None:
    source = "metrics-batch"
    body = ndjson_body(record(), record(), record(lat=200.0), record(lat=-200.0))

    await service.ingest_body(body, "application/x-ndjson", source=source)

    assert sample("fleetpulse_records_received_total", source=source) == 4
    assert sample("fleetpulse_records_accepted_total", source=source) == 2
    rejected = sample("fleetpulse_records_rejected_total", source=source, reason=OUT_OF_RANGE)
    assert rejected == 2


async def test_stage_seconds_observed(service: IngestService) -> None:
    validate_before = sample("fleetpulse_stage_seconds_count", stage="validate")
    enqueue_before = sample("fleetpulse_stage_seconds_count", stage="enqueue")

    await service.ingest_body(json_body(record()), JSON)

    assert sample("fleetpulse_stage_seconds_count", stage="validate") == validate_before + 1
    assert sample("fleetpulse_stage_seconds_count", stage="enqueue") == enqueue_before + 1


async def test_queue_full_propagates(store: MemoryStore) -> None:
    source = "queue-full"
    service = IngestService(make_settings(), MemoryQueue(capacity_records=1), store)

    with pytest.raises(QueueFullError):
        await service.ingest_body(json_body(record(), record(), record(lat=100.0)), JSON, source)

    assert sample("fleetpulse_queue_full_total", source=source) == 1
    assert sample("fleetpulse_records_accepted_total", source=source) == 0
    # The client retries the whole request, so its rejects are not stored twice.
    assert store.letters == []


async def test_dead_letter_failure_raises(queue: MemoryQueue) -> None:
    service = IngestService(make_settings(), queue, MemoryStore(fail_dead_letters=True))

    # The transport must not acknowledge: the reject would be lost. The valid record is
    # already published, and the store drops its copy from the client's retry.
    with pytest.raises(StoreError):
        await service.ingest_body(json_body(record(), record(lat=100.0)), JSON)

    assert len(queue.records) == 1


async def test_dead_letter_failure_request_error(queue: MemoryQueue) -> None:
    service = IngestService(make_settings(), queue, MemoryStore(fail_dead_letters=True))

    with pytest.raises(StoreError):
        await service.ingest_body(b"[{", JSON)


async def test_malformed_body_request_error(service: IngestService, store: MemoryStore) -> None:
    source = "malformed"
    body = b'[{"device_id": "a", "lat": NaN}]'

    with pytest.raises(IngestRequestError) as caught:
        await service.ingest_body(body, JSON, source)

    assert caught.value.status == 400
    assert caught.value.reason == INVALID_JSON
    assert len(store.letters) == 1
    assert store.letters[0].raw == body.decode()
    assert store.letters[0].index is None
    assert sample("fleetpulse_records_rejected_total", source=source, reason=INVALID_JSON) == 1


async def test_request_error_raw_truncated(queue: MemoryQueue, store: MemoryStore) -> None:
    service = IngestService(make_settings(dead_letter_raw_bytes=10), queue, store)

    with pytest.raises(IngestRequestError):
        await service.ingest_body(b"[" + b"1," * 100, JSON)

    assert store.letters[0].raw == "[1,1,1,1,1"


async def test_too_many_records_413(queue: MemoryQueue, store: MemoryStore) -> None:
    service = IngestService(make_settings(max_batch_records=2), queue, store)

    with pytest.raises(IngestRequestError) as caught:
        await service.ingest_body(json_body(record(), record(), record()), JSON)

    assert caught.value.status == 413
    assert caught.value.reason == TOO_LARGE
    assert queue.publish_calls == 0


async def test_unknown_content_type_415(service: IngestService, store: MemoryStore) -> None:
    with pytest.raises(IngestRequestError) as caught:
        await service.check_content_type("text/csv")

    assert caught.value.status == 415
    assert caught.value.reason == UNSUPPORTED_MEDIA_TYPE
    assert store.letters[0].reason == UNSUPPORTED_MEDIA_TYPE


async def test_ingest_records_from_decoder(
    service: IngestService, queue: MemoryQueue, store: MemoryStore
) -> None:
    received_at_ms = now_ms()
    wire = [
        RecordIn(device_id="tcp-1", ts=received_at_ms, lat=1.0, lon=2.0),
        RecordIn(device_id="tcp-2", ts=received_at_ms, lat=1.0, lon=2.0, fuel_pct=140.0),
    ]
    results = [
        validate_record(item, received_at_ms, service.settings, index=i, source="tcp")
        for i, item in enumerate(wire)
    ]
    accepted = [r for r in results if not isinstance(r, Reject)]
    rejects = [r for r in results if isinstance(r, Reject)]

    result = await service.ingest_records(accepted, rejects, "tcp")

    assert result.accepted == 1
    assert queue.records[0].source == "tcp"
    assert store.letters[0].device_id == "tcp-2"
    assert store.letters[0].received_at_ms == received_at_ms
