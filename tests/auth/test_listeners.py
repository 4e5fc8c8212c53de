"""Device protocols with authentication, rate limits, connection caps and TLS, on real sockets.

The listeners run on SQLite queue and store files and free loopback ports. The MQTT
checks call the subscriber's batch step directly, because the guard runs there and
mosquitto may be missing; tests/ingest/protocols covers the broker round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from fleetpulse.auth.bind import check_bind
from fleetpulse.config import Settings
from fleetpulse.errors import ConfigError
from fleetpulse.ingest.protocols.mqtt.listener import MqttListener, _Message
from fleetpulse.ingest.protocols.osmand.listener import OsmandListener
from fleetpulse.ingest.protocols.teltonika import TeltonikaListener
from fleetpulse.ingest.protocols.teltonika.decoding import CODEC_8_EXTENDED
from fleetpulse.ingest.protocols.teltonika.encoding import encode_packet
from fleetpulse.ingest.service import IngestService
from fleetpulse.model.record import DeadLetter
from fleetpulse.model.timestamps import now_ms
from fleetpulse.model.vocabulary import (
    DEVICE_NOT_ALLOWED,
    RATE_LIMITED,
    UNAUTHORIZED,
)
from fleetpulse.queue.base import Queue, open_queue
from fleetpulse.store.base import Store, open_store
from tests.auth.conftest import Tokens, auth_settings, self_signed_cert
from tests.ingest.protocols.teltonika_frames import IMEI, IMEI_HANDSHAKE, avl_record
from tests.mqtt_broker import Broker, broker_fixture  # noqa: F401  (the fixture)

ANSWER_TIMEOUT_S = 5.0


@contextlib.asynccontextmanager
async def backends(settings: Settings) -> AsyncIterator[tuple[IngestService, Queue, Store]]:
    queue = open_queue(settings)
    store = open_store(settings)
    await store.start()
    await queue.start()
    try:
        yield IngestService(settings, queue, store), queue, store
    finally:
        await queue.close()
        await store.close()


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Return whether the server closed the connection without sending a byte."""
    try:
        data = await asyncio.wait_for(reader.read(1), ANSWER_TIMEOUT_S)
    except ConnectionResetError:
        return True
    return data == b""


async def dead_letters(store: Store) -> list[DeadLetter]:
    return [stored.letter for stored in await store.dead_letters(100)]


# --- Teltonika ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def teltonika(settings: Settings) -> AsyncIterator[tuple[TeltonikaListener, Queue, Store]]:
    async with backends(settings) as (service, queue, store):
        listener = TeltonikaListener(settings, service)
        await listener.start()
        try:
            yield listener, queue, store
        finally:
            await listener.close()


def teltonika_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    teltonika = {
        "enabled": True,
        "port": 0,
        "allowed_imeis": [IMEI],
        **sections.pop("teltonika", {}),
    }
    return auth_settings(tmp_path / "data", teltonika=teltonika, **sections)


async def handshake(
    port: int, context: ssl.SSLContext | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    writer.write(IMEI_HANDSHAKE)
    answer = await asyncio.wait_for(reader.read(1), ANSWER_TIMEOUT_S)
    return reader, writer, answer


async def test_teltonika_over_limit_not_acknowledged(tmp_path: Path) -> None:
    settings = teltonika_settings(
        tmp_path, ingest={"device_rate_records_per_s": 0.5, "device_burst_records": 2}
    )
    start_ms = now_ms() - 60_000
    async with teltonika(settings) as (listener, queue, store):
        reader, writer, answer = await handshake(listener.port)
        assert answer == b"\x01"
        writer.write(
            encode_packet(CODEC_8_EXTENDED, [avl_record(start_ms), avl_record(start_ms + 1000)])
        )
        first = await asyncio.wait_for(reader.readexactly(4), ANSWER_TIMEOUT_S)
        writer.write(encode_packet(CODEC_8_EXTENDED, [avl_record(start_ms + 2000)]))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(reader.readexactly(4), 1.0)
        writer.close()
        letters = await dead_letters(store)

    assert int.from_bytes(first, "big") == 2
    assert queue.depth() == 2
    assert [letter.reason for letter in letters] == [RATE_LIMITED]
    assert letters[0].device_id == IMEI


async def test_teltonika_per_address_cap(tmp_path: Path) -> None:
    settings = teltonika_settings(tmp_path, teltonika={"max_connections_per_address": 1})
    async with teltonika(settings) as (listener, _, _):
        _, first_writer, first = await handshake(listener.port)
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(IMEI_HANDSHAKE)
        closed = await closed_by_server(reader)
        rejected = listener.rejected_connections
        first_writer.close()
        writer.close()

    assert first == b"\x01"
    assert closed
    assert rejected == 1


async def test_teltonika_total_cap(tmp_path: Path) -> None:
    settings = teltonika_settings(tmp_path, teltonika={"max_connections": 2})
    async with teltonika(settings) as (listener, _, _):
        writers = []
        for _ in range(2):
            _, writer, answer = await handshake(listener.port)
            assert answer == b"\x01"
            writers.append(writer)
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        closed = await closed_by_server(reader)
        writers.append(writer)
        for item in writers:
            item.close()

    assert closed


async def test_teltonika_tls_handshake(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    settings = teltonika_settings(tmp_path, teltonika={"tls_cert_file": cert, "tls_key_file": key})
    client = ssl.create_default_context(cafile=cert)
    async with teltonika(settings) as (listener, _, _):
        _, writer, answer = await handshake(listener.port, client)
        writer.close()
        description = listener.describe()

    assert answer == b"\x01"
    assert description.startswith("teltonika tls://")


async def test_teltonika_plain_client_on_tls_rejected(tmp_path: Path) -> None:
    cert, key = self_signed_cert(tmp_path)
    settings = teltonika_settings(tmp_path, teltonika={"tls_cert_file": cert, "tls_key_file": key})
    async with teltonika(settings) as (listener, queue, _):
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
        writer.write(IMEI_HANDSHAKE)
        answer = await asyncio.wait_for(reader.read(1), ANSWER_TIMEOUT_S)
        writer.close()

    assert answer != b"\x01"
    assert queue.depth() == 0


async def test_teltonika_auth_loopback_needs_list(tmp_path: Path) -> None:
    settings = teltonika_settings(tmp_path, teltonika={"allowed_imeis": []})
    async with teltonika(settings) as (listener, _, _):
        _, writer, answer = await handshake(listener.port)
        writer.close()
    assert answer == b"\x00"


def test_teltonika_tls_needs_both_files(tmp_path: Path) -> None:
    cert, _ = self_signed_cert(tmp_path)
    settings = teltonika_settings(tmp_path, teltonika={"tls_cert_file": cert})
    with pytest.raises(ConfigError, match="tls_key_file is empty"):
        TeltonikaListener(
            settings, IngestService(settings, open_queue(settings), open_store(settings))
        )


# --- check_bind ----------------------------------------------------------------------------


def bind_settings(**sections: dict[str, Any]) -> Settings:
    return msgspec.convert(sections, Settings)


def test_bind_loopback_without_auth_ok() -> None:
    check_bind(bind_settings(server={"host": "127.0.0.1"}))
    check_bind(bind_settings(server={"host": "::1"}))


def test_bind_public_without_auth_rejected() -> None:
    with pytest.raises(ConfigError, match=r"\[server\] host 0.0.0.0.*\[auth\] enabled"):
        check_bind(bind_settings(server={"host": "0.0.0.0"}))


@pytest.mark.parametrize("section", ["teltonika", "osmand", "mqtt"])
def test_bind_public_listener_rejected(section: str) -> None:
    settings = bind_settings(**{section: {"enabled": True, "host": "192.0.2.10"}})
    with pytest.raises(ConfigError, match=rf"\[{section}\] host 192.0.2.10"):
        check_bind(settings)


def test_bind_disabled_listener_ignored() -> None:
    check_bind(bind_settings(osmand={"enabled": False, "host": "0.0.0.0"}))


def test_bind_allow_unauthenticated(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    check_bind(bind_settings(server={"host": "0.0.0.0", "allow_unauthenticated": True}))
    assert "without authentication" in caplog.text


def test_bind_public_with_auth_ok() -> None:
    check_bind(bind_settings(server={"host": "0.0.0.0"}, auth={"enabled": True}))


def test_bind_auth_rejects_unknown_imeis() -> None:
    settings = bind_settings(
        auth={"enabled": True}, teltonika={"enabled": True, "allow_unknown_imeis": True}
    )
    with pytest.raises(ConfigError, match="allow_unknown_imeis"):
        check_bind(settings)


# --- OsmAnd ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def osmand(settings: Settings) -> AsyncIterator[tuple[str, Queue, Store]]:
    async with backends(settings) as (service, queue, store):
        listener = OsmandListener(settings, service)
        await listener.start()
        try:
            host, port = listener.address
            scheme = "https" if settings.osmand.tls_cert_file else "http"
            yield f"{scheme}://{host}:{port}/", queue, store
        finally:
            await listener.close()


def osmand_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    section = {"enabled": True, "port": 0, **sections.pop("osmand", {})}
    return auth_settings(tmp_path / "data", osmand=section, **sections)


def position(device_id: str, **extra: str) -> dict[str, str]:
    return {
        "id": device_id,
        "lat": "48.137",
        "lon": "11.575",
        "timestamp": str(now_ms() // 1000 - 5),
        **extra,
    }


async def test_osmand_token_parameter_accepted(tmp_path: Path, tokens: Tokens) -> None:
    async with osmand(osmand_settings(tmp_path)) as (url, queue, store):
        async with httpx.AsyncClient() as client:
            response = await client.post(url, params=position("truck-1", token=tokens.device))
        assert response.status_code == 200, response.text
        assert queue.depth() == 1
        deliveries = await queue.fetch(10, 1.0)

    attributes = deliveries[0].records[0].attributes or {}
    assert "token" not in attributes


async def test_osmand_token_of_other_device_403(tmp_path: Path, tokens: Tokens) -> None:
    async with osmand(osmand_settings(tmp_path)) as (url, queue, store):
        async with httpx.AsyncClient() as client:
            response = await client.post(url, params=position("truck-2", token=tokens.device))
        letters = await dead_letters(store)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == DEVICE_NOT_ALLOWED
    assert queue.depth() == 0
    assert [letter.reason for letter in letters] == [DEVICE_NOT_ALLOWED]
    assert tokens.device not in letters[0].raw
    assert "token=REDACTED" in letters[0].raw


async def test_osmand_invalid_token_401(tmp_path: Path, tokens: Tokens) -> None:
    forged = tokens.device[:-4] + "AAAA"
    async with osmand(osmand_settings(tmp_path)) as (url, queue, store):
        async with httpx.AsyncClient() as client:
            response = await client.post(url, params=position("truck-1", token=forged))
        letters = await dead_letters(store)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == UNAUTHORIZED
    assert queue.depth() == 0
    assert forged not in letters[0].raw


async def test_osmand_known_device_without_token(tmp_path: Path, tokens: Tokens) -> None:
    async with osmand(osmand_settings(tmp_path)) as (url, queue, _):
        async with httpx.AsyncClient() as client:
            known = await client.post(url, params=position("truck-1"))
            unknown = await client.post(url, params=position("stranger"))

    assert known.status_code == 200
    assert unknown.status_code == 403
    assert queue.depth() == 1


async def test_osmand_require_token(tmp_path: Path, tokens: Tokens) -> None:
    settings = osmand_settings(tmp_path, osmand={"require_token": True})
    async with osmand(settings) as (url, queue, _):
        async with httpx.AsyncClient() as client:
            without = await client.post(url, params=position("truck-1"))
            header = {"Authorization": f"Bearer {tokens.device}"}
            with_header = await client.post(url, params=position("truck-1"), headers=header)

    assert without.status_code == 401
    assert with_header.status_code == 200
    assert queue.depth() == 1


async def test_osmand_rate_limit_429(tmp_path: Path, tokens: Tokens) -> None:
    settings = osmand_settings(
        tmp_path, ingest={"device_rate_records_per_s": 0.5, "device_burst_records": 1}
    )
    async with osmand(settings) as (url, queue, store):
        async with httpx.AsyncClient() as client:
            first = await client.post(url, params=position("truck-1", token=tokens.device))
            second = await client.post(url, params=position("truck-1", token=tokens.device))
        letters = await dead_letters(store)

    assert first.status_code == 200
    assert second.status_code == 429
    assert int(second.headers["retry-after"]) >= 1
    assert [letter.reason for letter in letters] == [RATE_LIMITED]
    assert queue.depth() == 1


async def test_osmand_tls(tmp_path: Path, tokens: Tokens) -> None:
    cert, key = self_signed_cert(tmp_path)
    settings = osmand_settings(tmp_path, osmand={"tls_cert_file": cert, "tls_key_file": key})
    async with osmand(settings) as (url, queue, _):
        assert url.startswith("https://")
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=cert)) as client:
            response = await client.post(url, params=position("truck-1", token=tokens.device))

    assert response.status_code == 200
    assert queue.depth() == 1


async def test_osmand_log_hides_token(
    tmp_path: Path, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = osmand_settings(tmp_path, osmand={"log_frames": True})
    async with osmand(settings) as (url, _, _):
        async with httpx.AsyncClient() as client:
            await client.post(url, params=position("truck-2", token=tokens.device))

    # Only the server's lines: the test's HTTP client logs its own URL.
    server_lines = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith("fleetpulse")
    )
    secret = tokens.device.split("_", 2)[2]
    assert b"token=REDACTED".hex() in server_lines
    assert secret not in server_lines
    assert secret.encode().hex() not in server_lines


# --- MQTT ------------------------------------------------------------------------------------


def mqtt_message(device_id: str, mid: int, seconds_ago: int = 5) -> _Message:
    ts_ms = now_ms() - seconds_ago * 1000
    payload = msgspec.json.encode({"ts": ts_ms, "lat": 48.1, "lon": 11.5})
    return _Message(f"fleet/{device_id}/telemetry", payload, mid, 1, 0)


async def test_mqtt_unknown_device_dead_lettered(tmp_path: Path, tokens: Tokens) -> None:
    settings = auth_settings(tmp_path / "data", mqtt={"enabled": True})
    async with backends(settings) as (service, queue, store):
        listener = MqttListener(settings, service)
        await listener._ingest([mqtt_message("truck-1", 1), mqtt_message("stranger", 2)])
        letters = await dead_letters(store)

    assert queue.depth() == 1
    assert [letter.reason for letter in letters] == [DEVICE_NOT_ALLOWED]
    assert letters[0].device_id == "stranger"


async def test_mqtt_rate_limited_dead_lettered(tmp_path: Path, tokens: Tokens) -> None:
    settings = auth_settings(
        tmp_path / "data",
        mqtt={"enabled": True},
        ingest={"device_rate_records_per_s": 0.5, "device_burst_records": 1},
    )
    async with backends(settings) as (service, queue, store):
        listener = MqttListener(settings, service)
        await listener._ingest([mqtt_message("truck-1", 1, 6), mqtt_message("truck-1", 2, 5)])
        letters = await dead_letters(store)

    assert queue.depth() == 1
    assert [letter.reason for letter in letters] == [RATE_LIMITED]


async def test_mqtt_payload_device_must_match_topic(tmp_path: Path, tokens: Tokens) -> None:
    settings = auth_settings(tmp_path / "data", mqtt={"enabled": True})
    payload = msgspec.json.encode(
        {"device_id": "gw-1", "ts": now_ms() - 5000, "lat": 48.1, "lon": 11.5}
    )
    message = _Message("fleet/truck-1/telemetry", payload, 1, 1, 0)
    async with backends(settings) as (service, queue, store):
        listener = MqttListener(settings, service)
        await listener._ingest([message])
        letters = await dead_letters(store)

    assert queue.depth() == 0
    assert [letter.reason for letter in letters] == [DEVICE_NOT_ALLOWED]
    assert letters[0].device_id == "gw-1"
    assert "fleet/truck-1/telemetry" in letters[0].detail


async def test_mqtt_auth_with_broker(tmp_path: Path, tokens: Tokens, broker: Broker) -> None:
    settings = auth_settings(
        tmp_path / "data",
        mqtt={"enabled": True, "host": broker.host, "port": broker.port},
    )
    async with backends(settings) as (service, queue, store):
        listener = MqttListener(settings, service)
        await listener.start()
        try:
            await asyncio.wait_for(listener.subscribed.wait(), ANSWER_TIMEOUT_S)
            for device in ("stranger", "truck-1"):
                body = msgspec.json.encode({"ts": now_ms() - 5000, "lat": 48.1, "lon": 11.5})
                await asyncio.to_thread(broker.publish, f"fleet/{device}/telemetry", body)
            deadline = asyncio.get_running_loop().time() + ANSWER_TIMEOUT_S
            while queue.depth() < 1 or not await dead_letters(store):
                assert asyncio.get_running_loop().time() < deadline, "messages not ingested"
                await asyncio.sleep(0.05)
        finally:
            await listener.close()
        letters = await dead_letters(store)

    assert queue.depth() == 1
    assert [letter.device_id for letter in letters] == ["stranger"]
    assert letters[0].reason == DEVICE_NOT_ALLOWED


async def test_osmand_connection_cap_503(tmp_path: Path, tokens: Tokens) -> None:
    settings = osmand_settings(tmp_path, osmand={"max_connections": 1})
    async with osmand(settings) as (url, queue, _):
        host, port = url.removeprefix("http://").rstrip("/").split(":")
        _, idle_writer = await asyncio.open_connection(host, int(port))
        await asyncio.sleep(0.1)
        async with httpx.AsyncClient() as client:
            response = await client.post(url, params=position("truck-1", token=tokens.device))
        idle_writer.close()

    assert response.status_code == 503
    assert queue.depth() == 0


async def test_rate_limit_shared_across_protocols(tmp_path: Path, tokens: Tokens) -> None:
    from starlette.applications import Starlette

    from fleetpulse.auth.middleware import auth_middleware
    from fleetpulse.ingest.http import telemetry_routes
    from tests.auth.conftest import record, serve

    settings = osmand_settings(
        tmp_path, ingest={"device_rate_records_per_s": 0.1, "device_burst_records": 1}
    )
    async with backends(settings) as (service, queue, _):
        app = Starlette(
            routes=list(telemetry_routes(service)), middleware=[auth_middleware(settings)]
        )
        listener = OsmandListener(settings, service)
        await listener.start()
        try:
            host, port = listener.address
            async with serve(app) as url, httpx.AsyncClient() as client:
                headers = {"Authorization": f"Bearer {tokens.device}"}
                over_http = await client.post(
                    url + "/v1/telemetry", json=[record("truck-1")], headers=headers
                )
                over_osmand = await client.post(
                    f"http://{host}:{port}/", params=position("truck-1", token=tokens.device)
                )
        finally:
            await listener.close()

    assert over_http.status_code == 202
    assert over_osmand.status_code == 429
    assert queue.depth() == 1


async def test_teltonika_empty_allowlist_hint(
    tmp_path: Path, tokens: Tokens, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="fleetpulse.ingest.protocols.teltonika.listener")
    settings = auth_settings(tmp_path / "data", teltonika={"enabled": True, "port": 0})
    async with teltonika(settings):
        pass

    assert "rejects every device" in caplog.text
    assert "allowed_imeis" in caplog.text
    assert "allow_unknown_imeis = true" not in caplog.text
