"""The simulator's sender against a server with authentication on."""

from __future__ import annotations

import pytest

from fleetpulse.sim.errors import AuthenticationError
from fleetpulse.sim.sender import TOKEN_ENV, Sender
from tests.auth.conftest import AuthServer, record


async def _send(url: str, device_id: str, token: str | None = None) -> Sender:
    sender = Sender(url, batch_size=10, concurrency=1, give_up_after_s=5.0, token=token)
    await sender.start()
    try:
        await sender.add([record(device_id)])
        await sender.drain()
    finally:
        await sender.close()
    return sender


async def test_sender_token_from_environment(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, auth_server.tokens.admin)

    sender = await _send(auth_server.url, "truck-9")

    assert sender.stats.accepted == 1


async def test_sender_without_token_raises(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)

    with pytest.raises(AuthenticationError, match=TOKEN_ENV):
        await _send(auth_server.url, "truck-9")


async def test_sender_read_key_refused(auth_server: AuthServer) -> None:
    with pytest.raises(AuthenticationError, match="HTTP 403"):
        await _send(auth_server.url, "truck-9", token=auth_server.tokens.read)
