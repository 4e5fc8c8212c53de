"""The Teltonika listener in a real EmbeddedServer, with devices on real sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from fleetpulse.errors import QueueStorageFullError
from fleetpulse.ingest.protocols.teltonika import TeltonikaListener
from fleetpulse.ingest.protocols.teltonika.decoding import CODEC_8_EXTENDED
from fleetpulse.ingest.protocols.teltonika.encoding import encode_imei, encode_packet
from fleetpulse.model.record import DeadLetter
from fleetpulse.model.timestamps import now_ms
from fleetpulse.server import EmbeddedServer
from tests.api.conftest import pipeline_settings
from tests.ingest.protocols.teltonika_frames import IMEI, IMEI_HANDSHAKE, TC_4, avl_record

# Bounded waits: every read of an answer, and the processor catching up.
ANSWER_TIMEOUT_S = 5.0
DRAIN_TIMEOUT_S = 10.0


async def _server(tmp_path: Path, **teltonika: Any) -> EmbeddedServer:
    settings = pipeline_settings(tmp_path / "data")
    section = msgspec.structs.replace(settings.teltonika, enabled=True, port=0, **teltonika)
    server = EmbeddedServer(msgspec.structs.replace(settings, teltonika=section))
    await server.start()
    return server


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    server = await _server(tmp_path)
    yield server
    await server.close()


def _listener(server: EmbeddedServer) -> TeltonikaListener:
    (listener,) = [item for item in server.listeners if isinstance(item, TeltonikaListener)]
    return listener


async def _connect(
    server: EmbeddedServer, handshake: bytes = IMEI_HANDSHAKE
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", _listener(server).port)
    writer.write(handshake)
    answer = await asyncio.wait_for(reader.read(1), ANSWER_TIMEOUT_S)
    return reader, writer, answer


async def _positions(server: EmbeddedServer, device_id: str) -> list[dict[str, Any]]:
    assert await server.processor.drain(DRAIN_TIMEOUT_S)
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetpulse") as client:
        response = await client.get(f"/v1/vehicles/{device_id}/positions")
    assert response.status_code == 200
    positions: list[dict[str, Any]] = response.json()["positions"]
    return positions


async def _dead_letters(server: EmbeddedServer) -> list[DeadLetter]:
    return [stored.letter for stored in await server.store.dead_letters(100)]


async def test_handshake_accepts_on_loopback(server: EmbeddedServer) -> None:
    _, writer, answer = await _connect(server)
    assert answer == b"\x01"
    writer.close()


async def test_packet_acknowledged_and_stored(server: EmbeddedServer) -> None:
    start_ms = now_ms() - 10_000
    records = [avl_record(start_ms + i * 1000, speed_kmh=30 + i) for i in range(3)]
    reader, writer, _ = await _connect(server)
    writer.write(encode_packet(CODEC_8_EXTENDED, records))
    answer = await asyncio.wait_for(reader.readexactly(4), ANSWER_TIMEOUT_S)
    writer.close()

    assert int.from_bytes(answer, "big") == 3
    positions = await _positions(server, IMEI)
    assert [p["ts_ms"] for p in positions] == [r.ts_ms for r in records]
    assert positions[0]["speed_kmh"] == 30


async def test_split_and_joined_frames(server: EmbeddedServer) -> None:
    start_ms = now_ms() - 20_000
    first = encode_packet(CODEC_8_EXTENDED, [avl_record(start_ms)])
    second = encode_packet(CODEC_8_EXTENDED, [avl_record(start_ms + 1000)])
    third = encode_packet(CODEC_8_EXTENDED, [avl_record(start_ms + 2000)])
    reader, writer, _ = await _connect(server)
    writer.write(first[:5])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(first[5:] + second + third[:10])
    await writer.drain()
    await asyncio.sleep(0.05)
    writer.write(third[10:])
    answers = await asyncio.wait_for(reader.readexactly(12), ANSWER_TIMEOUT_S)
    writer.close()

    assert answers == (1).to_bytes(4, "big") * 3
    assert len(await _positions(server, IMEI)) == 3


async def test_wrong_crc_refused_and_closed(server: EmbeddedServer) -> None:
    frame = bytearray(encode_packet(CODEC_8_EXTENDED, [avl_record(now_ms())]))
    frame[-1] ^= 0xFF
    reader, writer, _ = await _connect(server)
    writer.write(bytes(frame))
    rest = await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT_S)
    writer.close()

    assert rest == b""  # closed without a record count
    letters = await _dead_letters(server)
    assert [letter.reason for letter in letters] == ["invalid_frame"]
    assert "CRC" in letters[0].detail
    assert letters[0].device_id == IMEI
    assert await _positions(server, IMEI) == []


async def test_old_vector_dead_lettered_but_acknowledged(server: EmbeddedServer) -> None:
    # TC-4 dates from 2024, beyond ingest.max_age_days: the record is rejected, kept as a
    # dead letter, and still counted in the answer so that the device stops resending it.
    reader, writer, _ = await _connect(server)
    writer.write(TC_4)
    answer = await asyncio.wait_for(reader.readexactly(4), ANSWER_TIMEOUT_S)
    writer.close()

    assert int.from_bytes(answer, "big") == 1
    letters = await _dead_letters(server)
    assert [letter.reason for letter in letters] == ["ts_too_old"]
    assert letters[0].device_id == "356307042441013"


async def test_unknown_imei_rejected(tmp_path: Path) -> None:
    server = await _server(tmp_path, allowed_imeis=["111111111111111"])
    try:
        reader, writer, answer = await _connect(server)
        rest = await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT_S)
        writer.close()
        listed_reader, listed_writer, listed_answer = await _connect(
            server, encode_imei("111111111111111")
        )
        listed_writer.close()
    finally:
        await server.close()
    assert answer == b"\x00"
    assert rest == b""
    assert listed_answer == b"\x01"


@pytest.mark.parametrize(
    "handshake", [b"\x00\x0fABCDEFGHIJKLMNO", b"\x00\x00", b"\xff\xff" + b"1" * 64]
)
async def test_malformed_imei_answered_zero(server: EmbeddedServer, handshake: bytes) -> None:
    reader, writer, answer = await _connect(server, handshake)
    rest = await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT_S)
    writer.close()
    assert answer == b"\x00"
    assert rest == b""


def test_public_host_without_list_rejects(tmp_path: Path) -> None:
    # Built but never started, so nothing binds the documentation address.
    settings = pipeline_settings(tmp_path / "data")
    section = msgspec.structs.replace(settings.teltonika, enabled=True, host="192.0.2.1")
    public = msgspec.structs.replace(settings, teltonika=section)
    listener = TeltonikaListener(public, EmbeddedServer(public).ingest)
    assert listener.context.imei_allowed(IMEI) is False


async def test_allow_unknown_overrides_list(tmp_path: Path) -> None:
    server = await _server(tmp_path, allowed_imeis=["111111111111111"], allow_unknown_imeis=True)
    try:
        _, writer, answer = await _connect(server)
        writer.close()
    finally:
        await server.close()
    assert answer == b"\x01"


async def test_garbage_handshake_closed(server: EmbeddedServer) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", _listener(server).port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    rest = await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT_S)
    writer.close()
    # The refusal byte, then the server closes the connection.
    assert rest == b"\x00"


async def test_idle_connection_closed(tmp_path: Path) -> None:
    server = await _server(tmp_path, idle_timeout_s=0.2)
    try:
        reader, writer, _ = await _connect(server)
        rest = await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT_S)
        writer.close()
    finally:
        await server.close()
    assert rest == b""


async def test_many_devices_concurrently(server: EmbeddedServer) -> None:
    start_ms = now_ms() - 30_000

    async def device(number: int) -> int:
        imei = f"35000000000{number:04d}"
        reader, writer, _ = await _connect(server, encode_imei(imei))
        writer.write(encode_packet(CODEC_8_EXTENDED, [avl_record(start_ms + number)]))
        answer = await asyncio.wait_for(reader.readexactly(4), ANSWER_TIMEOUT_S)
        writer.close()
        return int.from_bytes(answer, "big")

    answers = await asyncio.gather(*(device(n) for n in range(50)))
    assert answers == [1] * 50
    assert len(await _positions(server, "350000000000049")) == 1


async def test_describe_names_port(server: EmbeddedServer) -> None:
    listener = _listener(server)
    assert f":{listener.port}" in listener.describe()
    assert "any IMEI" in listener.describe()


async def test_disk_full_withholds_ack_keeps_connection(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = server.ingest
    publish_for_real = service.ingest_records
    failures = [QueueStorageFullError("queue.db is full: free disk space")]

    async def publish_or_fail(*args: Any, **kwargs: Any) -> Any:
        if failures:
            raise failures.pop()
        return await publish_for_real(*args, **kwargs)

    monkeypatch.setattr(service, "ingest_records", publish_or_fail)
    packet = encode_packet(CODEC_8_EXTENDED, [avl_record(now_ms() - 5_000, speed_kmh=40)])
    reader, writer, _ = await _connect(server)

    writer.write(packet)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(reader.readexactly(4), 0.5)
    writer.write(packet)
    answer = await asyncio.wait_for(reader.readexactly(4), ANSWER_TIMEOUT_S)
    writer.close()

    assert int.from_bytes(answer, "big") == 1
    assert len(await _positions(server, IMEI)) == 1
