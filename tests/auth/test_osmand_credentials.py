"""OsmAnd credential parameters in every spelling: authenticated, never stored, never logged.

A parameter name counts after percent-decoding and in any case, as the decoder reads it.
Each test runs the listener on a free loopback port with frame logging on and searches the
stored record, the dead letters and the server's log lines for the secret.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from fleetpulse.model.vocabulary import DEVICE_NOT_ALLOWED
from fleetpulse.queue.base import Queue
from tests.auth.conftest import Tokens
from tests.auth.test_listeners import dead_letters, osmand, osmand_settings, position


def secret_of(token: str) -> str:
    return token.split("_", 2)[2]


def server_log(caplog: pytest.LogCaptureFixture) -> str:
    """Return the server's log lines; the test's HTTP client logs its own URLs."""
    return "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith("fleetpulse")
    )


async def stored_attributes(queue: Queue) -> dict[str, object]:
    deliveries = await queue.fetch(10, 1.0)
    assert len(deliveries) == 1
    return dict(deliveries[0].records[0].attributes or {})


@pytest.mark.parametrize("name", ["TOKEN", "Token", "%74oken", "%54OKEN"])
async def test_osmand_token_name_any_form(
    tmp_path: Path, tokens: Tokens, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    caplog.set_level(logging.INFO)
    settings = osmand_settings(tmp_path, osmand={"log_frames": True, "require_token": True})
    query = urlencode(position("truck-1")) + f"&{name}={tokens.device}"
    async with osmand(settings) as (url, queue, _):
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{url}?{query}")
        attributes = await stored_attributes(queue)

    text = server_log(caplog)
    assert response.status_code == 200, response.text
    assert not any(key.lower() == "token" for key in attributes)
    assert tokens.device not in str(attributes)
    assert b"=REDACTED".hex() in text
    assert secret_of(tokens.device).encode().hex() not in text
    assert secret_of(tokens.device) not in text


async def test_osmand_encoded_token_dead_letter(tmp_path: Path, tokens: Tokens) -> None:
    query = urlencode(position("truck-2")) + f"&%74oken={tokens.device}"
    async with osmand(osmand_settings(tmp_path)) as (url, _, store):
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{url}?{query}")
        letters = await dead_letters(store)

    assert response.status_code == 403
    assert len(letters) == 1
    assert secret_of(tokens.device) not in letters[0].raw
    assert "token=REDACTED" in letters[0].raw


@pytest.mark.parametrize("name", ["password", "PASSWORD", "key", "api_key", "secret"])
async def test_osmand_credential_not_attribute(
    tmp_path: Path, tokens: Tokens, caplog: pytest.LogCaptureFixture, name: str
) -> None:
    caplog.set_level(logging.INFO)
    settings = osmand_settings(tmp_path, osmand={"log_frames": True})
    credential = "hunter2-opaque-value"
    params = position("truck-1", token=tokens.device, driver="anna", **{name: credential})
    async with osmand(settings) as (url, queue, _):
        async with httpx.AsyncClient() as client:
            response = await client.post(url, params=params)
        attributes = await stored_attributes(queue)

    text = server_log(caplog)
    assert response.status_code == 200, response.text
    assert attributes.get("driver") == "anna"
    assert name not in attributes
    assert credential not in str(attributes)
    assert credential.encode().hex() not in text


async def test_osmand_password_not_token(tmp_path: Path, tokens: Tokens) -> None:
    settings = osmand_settings(tmp_path, osmand={"require_token": True})
    async with osmand(settings) as (url, queue, _):
        async with httpx.AsyncClient() as client:
            response = await client.post(url, params=position("truck-1", password=tokens.device))

    assert response.status_code == 401
    assert queue.depth() == 0


async def test_osmand_read_key_wrong_scope(tmp_path: Path, tokens: Tokens) -> None:
    async with osmand(osmand_settings(tmp_path)) as (url, queue, _):
        async with httpx.AsyncClient() as client:
            response = await client.post(url, params=position("truck-1", token=tokens.read))

    error = response.json()["error"]
    assert response.status_code == 403
    assert error["code"] == DEVICE_NOT_ALLOWED
    assert "scope read" in error["message"]
    assert "invalid or revoked" not in error["message"]
    assert queue.depth() == 0
