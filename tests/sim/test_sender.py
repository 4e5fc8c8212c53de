"""The sender's edge cases: giving up, whole-request rejects, Retry-After forms."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from fleetpulse.sim import DeliveryError
from fleetpulse.sim.sender import RETRY_AFTER_MAX_S, Sender, _retry_after_s
from fleetpulse.sim.wire import DeviceRecord
from tests.sim.conftest import IngestStub


def _batch(count: int) -> list[object]:
    now_ms = time.time_ns() // 1_000_000
    return [DeviceRecord("sender-test", now_ms - i * 1000, 48.1, 11.5) for i in range(count)]


async def test_sender_gives_up_when_deadline_passes(ingest_stub: IngestStub) -> None:
    ingest_stub.fail_first = 1000
    ingest_stub.retry_after = "1"
    sender = Sender(ingest_stub.url, concurrency=1, give_up_after_s=0.5)
    await sender.start()
    try:
        await sender.submit(_batch(3))
        with pytest.raises(DeliveryError, match="gave up sending a batch of 3 records"):
            await sender.drain()
        with pytest.raises(DeliveryError):
            await sender.submit(_batch(1))
    finally:
        await sender.close()


async def test_sender_counts_request_reject(ingest_stub: IngestStub) -> None:
    ingest_stub.reject_all_status = 413
    sender = Sender(ingest_stub.url, concurrency=2)
    await sender.start()
    try:
        await sender.submit(_batch(5))
        await sender.drain()
    finally:
        await sender.close()

    assert sender.stats.request_errors == 1
    assert sender.stats.rejected == 5
    assert sender.stats.rejected_by_reason == {"too_large": 5}
    assert sender.stats.retries == 0


async def test_sender_counts_accepted(ingest_stub: IngestStub) -> None:
    sender = Sender(ingest_stub.url, concurrency=2)
    await sender.start()
    try:
        for _ in range(4):
            await sender.submit(_batch(10))
        await sender.drain()
    finally:
        await sender.close()

    assert sender.stats.accepted == 40
    assert sender.stats.batches == 4
    assert len(ingest_stub.accepted) == 40


def test_retry_after_seconds() -> None:
    response = httpx.Response(503, headers={"Retry-After": "2"})

    assert _retry_after_s(response) == 2.0


def test_retry_after_http_date() -> None:
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    response = httpx.Response(503, headers={"Retry-After": later})

    delay_s = _retry_after_s(response)
    assert delay_s is not None
    assert 25.0 <= delay_s <= 31.0


def test_retry_after_capped() -> None:
    response = httpx.Response(503, headers={"Retry-After": "86400"})

    assert _retry_after_s(response) == RETRY_AFTER_MAX_S


def test_retry_after_missing_or_unreadable() -> None:
    assert _retry_after_s(httpx.Response(503)) is None
    assert _retry_after_s(httpx.Response(503, headers={"Retry-After": "soon"})) is None
