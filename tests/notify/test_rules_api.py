from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from fleetpulse.api.app import create_app
from fleetpulse.api.context import ApiContext
from fleetpulse.config import Settings, load_settings
from fleetpulse.server import EmbeddedServer
from fleetpulse.store.base import open_store
from tests.notify.receivers import HttpReceiver

SECRET = "api-secret"

Started = Callable[..., Any]


@pytest.fixture
async def servers(tmp_path: Path) -> AsyncIterator[Started]:
    """Start EmbeddedServers with [notify] values; yield (server, client) pairs."""
    running: list[tuple[EmbeddedServer, httpx.AsyncClient]] = []

    async def start(**notify: Any) -> tuple[EmbeddedServer, httpx.AsyncClient]:
        settings = load_settings(
            environ={},
            overrides={
                "server": {"data_dir": str(tmp_path / "data"), "port": 0},
                "notify": {"retry_initial_s": 0.01, "retry_max_s": 0.05, **notify},
            },
        )
        server = EmbeddedServer(settings)
        await server.start()
        transport = httpx.ASGITransport(app=server.app)
        client = httpx.AsyncClient(transport=transport, base_url="http://fleetpulse")
        running.append((server, client))
        return server, client

    yield start
    for server, client in running:
        await client.aclose()
        await server.close()


def rule_body(url: str, **fields: Any) -> dict[str, Any]:
    return {"id": "night", "webhook_url": url, "webhook_secret": SECRET, **fields}


async def test_api_rule_add_and_list(servers: Started, receiver: HttpReceiver) -> None:
    _, client = await servers()
    added = await client.post("/v1/notify/rules", json=rule_body(receiver.url))
    assert added.status_code == 201
    assert added.json()["source"] == "api"

    listed = (await client.get("/v1/notify/rules")).json()
    assert listed["count"] == 1
    (rule,) = listed["rules"]
    assert rule["id"] == "night"
    assert rule["webhook_secret_set"] is True
    assert "webhook_secret" not in rule
    assert SECRET not in json.dumps(listed)


async def test_api_rule_survives_restart(servers: Started, receiver: HttpReceiver) -> None:
    server, client = await servers()
    await client.post("/v1/notify/rules", json=rule_body(receiver.url))
    await client.aclose()
    await server.close()
    _, reopened = await servers()
    listed = (await reopened.get("/v1/notify/rules")).json()
    assert [rule["id"] for rule in listed["rules"]] == ["night"]


async def test_api_rule_delete(servers: Started, receiver: HttpReceiver) -> None:
    _, client = await servers()
    await client.post("/v1/notify/rules", json=rule_body(receiver.url))
    deleted = await client.delete("/v1/notify/rules/night")
    assert deleted.status_code == 204
    assert (await client.get("/v1/notify/rules")).json()["count"] == 0
    again = await client.delete("/v1/notify/rules/night")
    assert again.status_code == 404


async def test_api_config_rule_not_deleted(servers: Started, receiver: HttpReceiver) -> None:
    _, client = await servers(rules=[{"id": "cfg", "webhook_url": receiver.url}])
    answer = await client.delete("/v1/notify/rules/cfg")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "conflict"


async def test_api_rule_duplicate_id_conflict(servers: Started, receiver: HttpReceiver) -> None:
    _, client = await servers()
    await client.post("/v1/notify/rules", json=rule_body(receiver.url))
    answer = await client.post("/v1/notify/rules", json=rule_body(receiver.url))
    assert answer.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"webhook_url": "http://127.0.0.1:9/"},
        {"id": "x", "webhook_url": "http://127.0.0.1:9/", "min_severity": "loud"},
        {"id": "x", "webhook_url": "http://127.0.0.1:9/", "event_types": ["speeding"]},
        {"id": "x", "webhook_url": "http://127.0.0.1:9/", "unknown_key": 1},
        {"id": "x"},
    ],
)
async def test_api_invalid_rule_rejected(servers: Started, body: dict[str, Any]) -> None:
    _, client = await servers()
    answer = await client.post("/v1/notify/rules", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid_rule"


async def test_api_dead_letters_listed(servers: Started, receiver: HttpReceiver) -> None:
    receiver.fail_first = 100
    server, client = await servers(
        max_attempts=2, rules=[{"id": "cfg", "webhook_url": receiver.url, "throttle_s": 0.0}]
    )
    now_ms = int(time.time() * 1000) - 60_000
    records = [
        {"device_id": "van-1", "ts": now_ms, "lat": 48.1, "lon": 11.5, "ignition": False},
        {"device_id": "van-1", "ts": now_ms + 1000, "lat": 48.1, "lon": 11.5, "ignition": True},
    ]
    assert (await client.post("/v1/telemetry", json=records)).status_code == 202
    assert await server.processor.drain(10.0)
    assert await server.notifier.drain(10.0)

    answer = (await client.get("/v1/notify/dead-letters")).json()
    assert answer["count"] == 1
    (letter,) = answer["dead_letters"]
    assert letter["event_type"] == "ignition_on"
    assert letter["attempts"] == 2
    assert letter["rule_id"] == "cfg"


async def test_pipeline_event_reaches_webhook(servers: Started, receiver: HttpReceiver) -> None:
    rule = {"id": "ign", "event_types": ["ignition_on"], "webhook_url": receiver.url}
    server, client = await servers(rules=[{**rule, "webhook_secret": SECRET}])
    now_ms = int(time.time() * 1000) - 60_000
    records = [
        {"device_id": "van-1", "ts": now_ms, "lat": 48.1, "lon": 11.5, "ignition": False},
        {"device_id": "van-1", "ts": now_ms + 1000, "lat": 48.1, "lon": 11.5, "ignition": True},
    ]
    await client.post("/v1/telemetry", json=records)
    await receiver.wait_for(1)
    payload = json.loads(receiver.requests[0].body)
    assert payload["event"]["device_id"] == "van-1"
    assert payload["event"]["ts_ms"] == now_ms + 1000


async def test_api_without_notifier_unavailable(tmp_path: Path) -> None:
    settings = msgspec.structs.replace(
        Settings(), server=msgspec.structs.replace(Settings().server, data_dir=str(tmp_path))
    )
    store = open_store(settings)
    app = create_app(ApiContext(settings=settings, store=store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetpulse") as client:
        answer = await client.get("/v1/notify/rules")
    assert answer.status_code == 503
