"""No token in any log line: the redacting filter alone, and a real server at debug level.

The server test starts `fleetpulse run` with auth on and ``--log-level debug``, opens the
live WebSocket with the token in the query string, in the subprotocol and in the
Authorization header, and then searches the server's whole stderr for the secrets.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from fleetpulse.auth.keyfile import create_key
from fleetpulse.auth.redact import RedactingFilter, redact_text
from fleetpulse.auth.tokens import new_token
from tests.web.conftest import START_TIMEOUT_S, URL_PATTERN, stop_process

WS_TIMEOUT_S = 10.0


def secret_of(token: str) -> str:
    return token.split("_", 2)[2]


def test_redact_token_keeps_key_id() -> None:
    key_id, token = new_token()

    text = redact_text(f"key {token} used")

    assert secret_of(token) not in text
    assert f"fp_{key_id}_REDACTED" in text


@pytest.mark.parametrize(
    "line",
    [
        "authorization: Bearer {token}",
        "Authorization: bearer {token}",
        "sec-websocket-protocol: fleetpulse, fleetpulse.bearer.{token}",
        "GET /osmand?id=1&TOKEN={token}&lat=1",
        "GET /osmand?password={token}",
        "GET /x?api_key={token}",
    ],
)
def test_redact_credential_forms(line: str) -> None:
    # A secret that is not token-shaped, so that only the context can hide it.
    secret = "s3cr3t-value-XYZ"

    text = redact_text(line.format(token=secret))

    assert secret not in text
    assert "REDACTED" in text


def test_redact_leaves_plain_lines() -> None:
    line = "osmand listener started host=127.0.0.1 port=5055 tls=False auth=True key_id=ab12"
    assert redact_text(line) == line


def test_filter_rewrites_args_and_traceback() -> None:
    _, token = new_token()
    logger = logging.getLogger("fleetpulse.test_redaction")
    try:
        raise ValueError(f"bad header Bearer {token}")
    except ValueError:
        record = logger.makeRecord(
            logger.name, logging.ERROR, __file__, 1, "header %s", (token,), sys.exc_info()
        )

    assert RedactingFilter().filter(record)

    formatted = logging.Formatter().format(record)
    assert secret_of(token) not in formatted
    assert "header fp_" in formatted
    assert "ValueError" in formatted


def test_filter_strips_uvicorn_query() -> None:
    record = logging.LogRecord(
        "uvicorn.error",
        logging.INFO,
        __file__,
        1,
        '%s - "WebSocket %s" [accepted]',
        ("127.0.0.1:5000", "/v1/live?vehicle=a&t=opaque-secret"),
        None,
    )

    RedactingFilter().filter(record)

    message = record.getMessage()
    assert "opaque-secret" not in message
    assert '"WebSocket /v1/live?REDACTED" [accepted]' in message


@dataclass
class Child:
    url: str
    read: str
    banner: str
    log_path: Path
    proc: subprocess.Popen[str]


@pytest.fixture
def debug_server(tmp_path: Path) -> Iterator[Child]:
    """`fleetpulse run` with auth on at debug level; its stderr goes to a file."""
    data = tmp_path / "data"
    _, read = create_key(data / "keys.json", "read", name="wallboard")
    config = tmp_path / "fleetpulse.toml"
    config.write_text("[auth]\nenabled = true\n", encoding="utf-8")
    log_path = tmp_path / "server.log"
    command = [
        sys.executable,
        "-m",
        "fleetpulse.cli.main",
        "run",
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data-dir",
        str(data),
        "--log-level",
        "debug",
    ]
    with open(log_path, "w", encoding="utf-8") as log_file:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log_file, text=True)
    try:
        url, banner = _read_banner(proc, log_path)
        yield Child(url, read, banner, log_path, proc)
    finally:
        stop_process(proc)


def _read_banner(proc: subprocess.Popen[str], log_path: Path) -> tuple[str, str]:
    assert proc.stdout is not None
    lines: list[str] = []
    url = None
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = URL_PATTERN.search(line)
        if match:
            url = match.group(1)
        if "stop with Ctrl-C" in line and url is not None:
            return url, "".join(lines)
    raise RuntimeError(f"fleetpulse run did not start; see {log_path}")


def _open_live(url: str, **options: object) -> None:
    """Open the live stream, read the first frame or the close, and close."""
    try:
        with connect(url, open_timeout=WS_TIMEOUT_S, **options) as websocket:  # type: ignore[arg-type]
            websocket.recv(timeout=WS_TIMEOUT_S)
    except (ConnectionClosed, InvalidStatus, TimeoutError):
        pass


def test_server_debug_log_hides_token(debug_server: Child) -> None:
    live = debug_server.url.replace("http://", "ws://") + "/v1/live"
    token = debug_server.read

    _open_live(f"{live}?token={token}")
    _open_live(live, subprotocols=["fleetpulse", f"fleetpulse.bearer.{token}"])
    _open_live(live, additional_headers={"Authorization": f"Bearer {token}"})
    stop_process(debug_server.proc)

    text = debug_server.log_path.read_text(encoding="utf-8")
    # The lines that used to carry the token are there, so the search below means something.
    assert '"WebSocket /v1/live?REDACTED"' in text
    assert "sec-websocket-protocol" in text.lower()
    assert "authorization: Bearer REDACTED" in text
    assert secret_of(token) not in text


def test_server_banner_states_auth(debug_server: Child) -> None:
    assert "auth:    on" in debug_server.banner
    assert "keys.json" in debug_server.banner
    assert secret_of(debug_server.read) not in debug_server.banner
