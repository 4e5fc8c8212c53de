"""A small ingest server for the simulator's tests, on a real socket on 127.0.0.1.

It checks records against ``RecordIn`` (field types and ranges) and the default clock
window, responds like ``POST /v1/telemetry`` does, and keeps what it accepted with the
time it arrived. It can respond 503 or drop connections a few times to test retries.
The real ingest service has its own tests. This stub only needs the same verdicts for
the simulator's records.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import msgspec
import pytest

from fleetpulse.config import IngestSettings
from fleetpulse.model.record import RecordIn

INGEST = IngestSettings()


@dataclass
class Accepted:
    record: RecordIn
    ts_ms: int
    received_ms: int


@dataclass
class IngestStub:
    """Behaviour switches, and everything the stub received for the test to read."""

    fail_first: int = 0
    fail_status: int = 503
    retry_after: str | None = "0"
    drop_first: int = 0
    reject_all_status: int | None = None
    accepted: list[Accepted] = field(default_factory=list)
    rejected_reasons: list[str] = field(default_factory=list)
    requests: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""


def check_record(item: Any, now_ms: int) -> tuple[str | None, RecordIn | None, int]:
    """Return (reject reason or None, the record, its ts in ms) the way ingest judges it."""
    if not isinstance(item, dict):
        return "invalid_type", None, 0
    try:
        record = msgspec.convert(item, RecordIn)
    except msgspec.ValidationError:
        return "invalid", None, 0
    if isinstance(record.ts, str):
        try:
            moment = datetime.fromisoformat(record.ts)
        except ValueError:
            return "ts_invalid", None, 0
        if moment.tzinfo is None:
            return "ts_no_timezone", None, 0
        ts_ms = round(moment.timestamp() * 1000)
    else:
        ts_ms = record.ts
    if ts_ms > now_ms + INGEST.max_future_skew_s * 1000:
        return "ts_in_future", None, ts_ms
    if ts_ms < now_ms - INGEST.max_age_days * 86_400_000:
        return "ts_too_old", None, ts_ms
    return None, record, ts_ms


def _handler(stub: IngestStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Idle keep-alive connections are closed after this many seconds.
        timeout = 5

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._send(404, {"error": {"code": "not_found", "message": "no such page"}})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            received_ms = time.time_ns() // 1_000_000
            with stub.lock:
                stub.requests += 1
                if stub.drop_first > 0:
                    stub.drop_first -= 1
                    self.close_connection = True
                    return
                if stub.fail_first > 0:
                    stub.fail_first -= 1
                    headers = {} if stub.retry_after is None else {"Retry-After": stub.retry_after}
                    self._send(stub.fail_status, {"error": {"code": "busy"}}, headers)
                    return
            if stub.reject_all_status is not None:
                error = {"code": "too_large", "message": "the batch is too large"}
                self._send(stub.reject_all_status, {"error": error})
                return

            items = msgspec.json.decode(body)
            errors = []
            with stub.lock:
                stub.batch_sizes.append(len(items))
                for index, item in enumerate(items):
                    reason, record, ts_ms = check_record(item, received_ms)
                    if reason is None:
                        assert record is not None
                        stub.accepted.append(Accepted(record, ts_ms, received_ms))
                    else:
                        stub.rejected_reasons.append(reason)
                        errors.append({"index": index, "reason": reason, "detail": ""})
            reply = {
                "accepted": len(items) - len(errors),
                "rejected": len(errors),
                "errors": errors,
            }
            self._send(202, reply)

        def _send(self, status: int, document: Any, headers: dict[str, str] | None = None) -> None:
            payload = msgspec.json.encode(document)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

    return Handler


@pytest.fixture
def ingest_stub() -> Iterator[IngestStub]:
    stub = IngestStub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="ingest-stub", daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
