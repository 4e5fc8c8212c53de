"""Tokens, the key file, the key store's reload, the rate limiter and `fleetpulse keys`."""

from __future__ import annotations

import json
import os
import ssl
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from fleetpulse.auth.keyfile import (
    KeyFileError,
    KeyStore,
    create_key,
    read_keys,
    revoke_key,
)
from fleetpulse.auth.ratelimit import DeviceRateLimiter
from fleetpulse.auth.tokens import key_id_of, new_token, token_sha256
from tests.auth.conftest import Tokens, auth_settings, running_server, self_signed_cert, serve


def test_token_format() -> None:
    key_id, token = new_token()
    prefix, token_key_id, secret = token.split("_", 2)
    assert prefix == "fp"
    assert token_key_id == key_id
    assert len(secret) >= 43  # 32 bytes in URL-safe base64
    assert key_id_of(token) == key_id


@pytest.mark.parametrize(
    "text", ["", "fp_", "fp_abc_secret", "xx_0123456789ab_secret", "fp_0123456789ab_", "Bearer x"]
)
def test_key_id_of_rejects_malformed(text: str) -> None:
    assert key_id_of(text) is None


def test_tokens_unique() -> None:
    assert len({new_token()[1] for _ in range(1000)}) == 1000


def test_key_file_stores_only_hash(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    credential, token = create_key(path, "read", name="dashboard")

    text = path.read_text()
    assert token not in text
    assert token.split("_", 2)[2] not in text
    assert json.loads(text)["keys"][0]["sha256"] == token_sha256(token)
    assert credential.key_id in text


def test_key_file_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    create_key(path, "admin")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_key_file_readable_by_others_rejected(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    create_key(path, "admin")
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        read_keys(path)


def test_invalid_key_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text('{"keys": [{"id": "x"}]}')
    path.chmod(0o600)
    with pytest.raises(KeyFileError, match="is invalid"):
        read_keys(path)


def test_device_key_needs_devices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one device"):
        create_key(tmp_path / "keys.json", "device")


def test_concurrent_creates_all_kept(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    with ThreadPoolExecutor(8) as pool:
        created = list(pool.map(lambda i: create_key(path, "read", name=str(i)), range(40)))
    ids = {credential.key_id for credential, _ in created}
    assert {credential.key_id for credential in read_keys(path)} == ids


def test_store_authenticates_and_revokes(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    credential, token = create_key(path, "read")
    store = KeyStore(path)
    store.load()

    found = store.authenticate(token)
    assert found is not None
    assert found.key_id == credential.key_id
    assert store.authenticate(token[:-1] + ("A" if token[-1] != "A" else "B")) is None

    revoke_key(path, credential.key_id)
    store._checked_at = -1e9  # skip the reload interval
    assert store.authenticate(token) is None


def test_store_keeps_keys_when_file_breaks(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    _, token = create_key(path, "read")
    store = KeyStore(path)
    store.load()

    path.write_text("{ not json")
    store._checked_at = -1e9
    assert store.authenticate(token) is not None


def test_store_device_known(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    credential, _ = create_key(path, "device", frozenset({"truck-1"}))
    store = KeyStore(path)
    store.load()
    assert store.device_known("truck-1")
    assert not store.device_known("truck-2")

    revoke_key(path, credential.key_id)
    store._checked_at = -1e9
    assert not store.device_known("truck-1")


# --- rate limiter --------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refills_at_rate() -> None:
    clock = FakeClock()
    limiter = DeviceRateLimiter(2.0, 4, clock=clock)
    assert limiter.take({"a": 4}).admitted
    decision = limiter.take({"a": 1})
    assert not decision.admitted
    assert decision.retry_after_s == 1

    clock.now += 0.5
    assert limiter.take({"a": 1}).admitted
    assert not limiter.take({"a": 1}).admitted


def test_bucket_all_or_none() -> None:
    limiter = DeviceRateLimiter(1.0, 2, clock=FakeClock())
    assert limiter.take({"a": 2}).admitted
    decision = limiter.take({"a": 1, "b": 1})
    assert decision.limited_devices == frozenset({"a"})
    assert limiter.take({"b": 2}).admitted  # b's bucket was not touched


def test_bucket_backlog_debt() -> None:
    clock = FakeClock()
    limiter = DeviceRateLimiter(1.0, 5, clock=clock)
    assert limiter.take({"a": 20}).admitted
    decision = limiter.take({"a": 1})
    assert decision.retry_after_s == 16  # 15 records of debt plus one token
    clock.now += 16
    assert limiter.take({"a": 1}).admitted


def test_bucket_off_admits_all() -> None:
    limiter = DeviceRateLimiter(0.0, 1)
    assert limiter.take({"a": 1_000_000}).admitted


def test_bucket_count_bounded() -> None:
    limiter = DeviceRateLimiter(1.0, 1, clock=FakeClock(), max_devices=3)
    for device in "abcde":
        limiter.take({device: 1})
    assert len(limiter._buckets) == 3


# --- HTTPS -----------------------------------------------------------------------------------


async def test_api_over_https(tmp_path: Path, tokens: Tokens) -> None:
    cert, key = self_signed_cert(tmp_path)
    settings = auth_settings(tmp_path / "data")
    async with running_server(settings, tokens) as server:
        async with serve(server.app, tls=(cert, key)) as url:
            assert url.startswith("https://")
            context = ssl.create_default_context(cafile=cert)
            headers = {"Authorization": f"Bearer {tokens.read}"}
            async with httpx.AsyncClient(verify=context) as client:
                response = await client.get(url + "/v1/vehicles", headers=headers)
    assert response.status_code == 200


# --- the command line ------------------------------------------------------------------------


def run_keys(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "fleetpulse.cli.main", "keys", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_cli_create_list_revoke(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    created = run_keys("create", "--device", "truck-7", "--name", "truck", "--data-dir", data)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    key_id = key_id_of(token)
    assert key_id is not None

    listed = run_keys("list", "--data-dir", data)
    assert listed.returncode == 0
    assert key_id in listed.stdout
    assert "truck-7" in listed.stdout
    assert token.split("_", 2)[2] not in listed.stdout

    revoked = run_keys("revoke", key_id, "--data-dir", data)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in run_keys("list", "--data-dir", data).stdout


def test_cli_revoke_unknown_key(tmp_path: Path) -> None:
    result = run_keys("revoke", "000000000000", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert "no key with id" in result.stderr


def test_cli_create_needs_scope_or_device(tmp_path: Path) -> None:
    result = run_keys("create", "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "--scope" in result.stderr


def test_cli_help() -> None:
    result = run_keys("create", "--help")
    assert result.returncode == 0
    assert "--scope" in result.stdout
    assert "--device" in result.stdout


async def test_embedded_server_https(tmp_path: Path, tokens: Tokens) -> None:
    from fleetpulse.server import EmbeddedServer

    cert, key = self_signed_cert(tmp_path)
    settings = auth_settings(
        tmp_path / "data", server={"port": 0, "tls_cert_file": cert, "tls_key_file": key}
    )
    server = EmbeddedServer(settings)
    await server.start()
    try:
        url = server.url
        context = ssl.create_default_context(cafile=cert)
        async with httpx.AsyncClient(verify=context) as client:
            health = await client.get(url + "/healthz")
            vehicles = await client.get(url + "/v1/vehicles")
    finally:
        await server.close()

    assert url.startswith("https://127.0.0.1:")
    assert health.status_code == 200
    assert vehicles.status_code == 401


@pytest.mark.parametrize("device_id", ["", " ", "x" * 65, "x" * 80, "truck\x1b7", "a\u200bb"])
def test_cli_create_invalid_device_id(tmp_path: Path, device_id: str) -> None:
    result = run_keys("create", "--device", device_id, "--data-dir", str(tmp_path))

    assert result.returncode == 2
    assert "is invalid" in result.stderr
    assert not (tmp_path / "keys.json").exists()


def test_cli_create_longest_device_id(tmp_path: Path) -> None:
    result = run_keys("create", "--device", "x" * 64, "--data-dir", str(tmp_path))

    assert result.returncode == 0, result.stderr
