"""POST /v1/telemetry with device tokens and the per-device rate limit, over real HTTP."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetpulse import metrics
from fleetpulse.model.vocabulary import DEVICE_NOT_ALLOWED, RATE_LIMITED, SOURCE_HTTP
from tests.auth.conftest import AuthServer, Tokens, auth_settings, record, running_server


async def post(
    server: AuthServer, token: str | None, records: list[dict[str, Any]]
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        return await client.post("/v1/telemetry", headers=headers, content=json.dumps(records))


def rejected_count(reason: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "fleetpulse_records_rejected_total", {"source": SOURCE_HTTP, "reason": reason}
    )
    return value or 0.0


async def test_device_token_own_records_accepted(auth_server: AuthServer) -> None:
    response = await post(auth_server, auth_server.tokens.device, [record("truck-1")])
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1
    assert auth_server.queue.depth() == 1


async def test_device_token_other_device_rejected(auth_server: AuthServer) -> None:
    before = rejected_count(DEVICE_NOT_ALLOWED)
    records = [record("truck-1"), record("truck-2"), {"device_id": "truck-1"}]
    response = await post(auth_server, auth_server.tokens.device, records)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected"] == 2
    reasons = {error["index"]: error["reason"] for error in body["errors"]}
    assert reasons[1] == DEVICE_NOT_ALLOWED
    assert reasons[2] != DEVICE_NOT_ALLOWED  # invalid anyway: no ts, lat, lon
    assert auth_server.queue.depth() == 1
    assert rejected_count(DEVICE_NOT_ALLOWED) == before + 1

    letters = await auth_server.store.dead_letters(10)
    rejected = [letter for letter in letters if letter.letter.reason == DEVICE_NOT_ALLOWED]
    assert len(rejected) == 1
    assert rejected[0].letter.device_id == "truck-2"
    assert rejected[0].letter.index == 1
    assert "truck-2" in rejected[0].letter.raw


async def test_gateway_token_covers_its_devices(auth_server: AuthServer) -> None:
    records = [record("gw-1"), record("gw-2"), record("truck-1")]
    response = await post(auth_server, auth_server.tokens.gateway, records)

    assert response.status_code == 202
    body = response.json()
    assert body["accepted"] == 2
    assert [error["reason"] for error in body["errors"]] == [DEVICE_NOT_ALLOWED]


async def test_admin_key_sends_any_device(auth_server: AuthServer) -> None:
    response = await post(auth_server, auth_server.tokens.admin, [record("x-1"), record("x-2")])
    assert response.status_code == 202
    assert response.json()["accepted"] == 2


async def test_read_key_cannot_send(auth_server: AuthServer) -> None:
    response = await post(auth_server, auth_server.tokens.read, [record("truck-1")])
    assert response.status_code == 403
    assert auth_server.queue.depth() == 0


@pytest.fixture
async def limited_server(tmp_path: Path, tokens: Tokens) -> Any:
    settings = auth_settings(
        tmp_path / "data",
        ingest={"device_rate_records_per_s": 1.0, "device_burst_records": 3},
    )
    async with running_server(settings, tokens) as server:
        yield server


async def test_rate_limit_429_with_retry_after(limited_server: AuthServer) -> None:
    before = rejected_count(RATE_LIMITED)
    token = limited_server.tokens.device
    first = await post(limited_server, token, [record("truck-1", s) for s in (30, 29, 28)])
    second = await post(limited_server, token, [record("truck-1", s) for s in (27, 26)])

    assert first.status_code == 202
    assert second.status_code == 429, second.text
    assert second.json()["error"]["code"] == RATE_LIMITED
    assert int(second.headers["retry-after"]) >= 1
    assert limited_server.queue.depth() == 3
    assert rejected_count(RATE_LIMITED) == before + 1

    letters = await limited_server.store.dead_letters(10)
    limited = [letter.letter for letter in letters if letter.letter.reason == RATE_LIMITED]
    assert len(limited) == 1
    assert limited[0].device_id == "truck-1"


async def test_rate_limit_per_device(limited_server: AuthServer) -> None:
    token = limited_server.tokens.gateway
    first = await post(limited_server, token, [record("gw-1", s) for s in (30, 29, 28)])
    other = await post(limited_server, token, [record("gw-2", s) for s in (30, 29, 28)])
    again = await post(limited_server, token, [record("gw-1", 20)])

    assert first.status_code == 202
    assert other.status_code == 202
    assert again.status_code == 429


async def test_rate_limit_admits_backlog_once(limited_server: AuthServer) -> None:
    # A batch larger than the burst passes once; the device then waits off its debt.
    token = limited_server.tokens.device
    backlog = await post(limited_server, token, [record("truck-1", 100 - s) for s in range(10)])
    after = await post(limited_server, token, [record("truck-1", 5)])

    assert backlog.status_code == 202
    assert backlog.json()["accepted"] == 10
    assert after.status_code == 429
    assert int(after.headers["retry-after"]) >= 8


async def test_logs_never_show_token(
    limited_server: AuthServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = limited_server.tokens
    forged = tokens.admin[:-4] + "AAAA"
    async with httpx.AsyncClient(base_url=limited_server.url) as client:
        await client.get("/v1/vehicles", headers={"Authorization": f"Bearer {forged}"})
        await client.get("/v1/dead-letters", headers={"Authorization": f"Bearer {tokens.read}"})
    await post(limited_server, tokens.device, [record("truck-2")])
    for _ in range(3):
        await post(limited_server, tokens.device, [record("truck-1", 40), record("truck-1", 39)])

    # Only the server's lines: the test's HTTP client logs its own requests.
    text = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith("fleetpulse")
    )
    assert "request rejected status=401" in text
    assert "request rejected status=403" in text
    assert "request rate limited" in text
    for token in (forged, tokens.read, tokens.device, tokens.admin):
        secret = token.split("_", 2)[2]
        assert secret not in text
