"""The ``osmand`` transport: one HTTP request per record, as Traccar Client sends them.

Each record becomes ``POST {url}/?id=..&timestamp=..&lat=..&lon=..&speed=..`` with the
speed in knots. Devices are spread over ``concurrency`` connections; one device's records
go over one connection, in order. A 503 or a network error is retried with back-off
until ``give_up_after_s`` runs out; a 400 counts the record as rejected.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import zlib
from typing import Any, Final

import httpx
import msgspec

from fleetpulse.ingest.protocols.osmand.decoding import KMH_PER_UNIT
from fleetpulse.model.timestamps import parse_rfc3339_ms
from fleetpulse.sim.errors import DeliveryError, ServerUnreachableError
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.sender import SendStats

log = logging.getLogger(__name__)

BACKOFF_FIRST_S: Final = 0.25
BACKOFF_MAX_S: Final = 10.0
# Records waiting per connection before add() waits; keeps memory flat on long runs.
LANE_QUEUE_RECORDS: Final = 1000


def adapt_options(options: SimulationOptions) -> SimulationOptions:
    """Switch off bad records: they are JSON faults that OsmAnd parameters cannot carry."""
    return msgspec.structs.replace(options, bad_share=0.0)


def to_parameters(record: Any) -> dict[str, str]:
    """Return the OsmAnd parameters of a simulated DeviceRecord (timestamp in epoch ms)."""
    ts_ms = record.ts if isinstance(record.ts, int) else parse_rfc3339_ms(record.ts)
    params = {
        "id": record.device_id,
        "timestamp": str(ts_ms),
        "lat": repr(record.lat),
        "lon": repr(record.lon),
    }
    if record.speed_kmh is not None:
        params["speed"] = f"{record.speed_kmh / KMH_PER_UNIT['knots']:.3f}"
    if record.heading_deg is not None:
        params["bearing"] = f"{record.heading_deg:.1f}"
    if record.altitude_m is not None:
        params["altitude"] = f"{record.altitude_m:.1f}"
    if record.accuracy_m is not None:
        params["accuracy"] = f"{record.accuracy_m:.1f}"
    return params


class OsmandTransport:
    """Sends each record as its own request and counts the server's responses in ``stats``."""

    def __init__(self, options: SimulationOptions) -> None:
        self.url = options.url.rstrip("/") + "/"
        self.give_up_after_s = options.give_up_after_s
        self.stats = SendStats()
        self._client = httpx.AsyncClient(timeout=options.request_timeout_s)
        self._lanes: list[asyncio.Queue[Any]] = [
            asyncio.Queue(maxsize=LANE_QUEUE_RECORDS) for _ in range(max(1, options.concurrency))
        ]
        self._workers: list[asyncio.Task[None]] = []
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self._jitter = random.Random()

    async def probe(self) -> None:
        """Raise ServerUnreachableError unless the server accepts a connection."""
        try:
            await self._client.get(self.url)
        except httpx.TransportError as exc:
            raise ServerUnreachableError(self.url, str(exc) or type(exc).__name__) from exc

    async def start(self) -> None:
        for number, lane in enumerate(self._lanes):
            self._workers.append(asyncio.create_task(self._work(lane), name=f"osmand-{number}"))
        log.info("sending OsmAnd requests to %s over %d connections", self.url, len(self._lanes))

    async def add(self, records: list[Any]) -> None:
        for record in records:
            self._raise_if_failed()
            lane = self._lanes[zlib.crc32(record.device_id.encode()) % len(self._lanes)]
            await lane.put(record)

    async def flush(self) -> None:
        self._raise_if_failed()

    async def submit(self, records: list[Any]) -> None:
        await self.add(records)

    async def drain(self) -> None:
        """Wait until the server responded to every record added. Raises a worker's error."""
        for lane in self._lanes:
            joined = asyncio.ensure_future(lane.join())
            failed = asyncio.ensure_future(self._failed.wait())
            # Wakes when every record of the lane has a response or a worker failed for good.
            await asyncio.wait({joined, failed}, return_when=asyncio.FIRST_COMPLETED)
            joined.cancel()
            failed.cancel()
            self._raise_if_failed()

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        await self._client.aclose()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _work(self, lane: asyncio.Queue[Any]) -> None:
        while True:
            record = await lane.get()
            try:
                await self._deliver(record)
            except Exception as exc:
                log.error("stopping the osmand transport: %s", exc)
                self._failure = exc
                self._failed.set()
                return
            finally:
                lane.task_done()

    async def _deliver(self, record: Any) -> None:
        params = to_parameters(record)
        started_s = time.monotonic()
        attempt = 0
        while True:
            try:
                response = await self._client.post(self.url, params=params)
            except httpx.TransportError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code < 500:
                    self._count(response)
                    return
                last_error = f"HTTP {response.status_code}"
            attempt += 1
            delay_s = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0**attempt)
            delay_s *= self._jitter.uniform(0.5, 1.0)
            waited_s = time.monotonic() - started_s
            if waited_s + delay_s > self.give_up_after_s:
                raise DeliveryError(self.url, 1, waited_s, last_error)
            self.stats.retries += 1
            await asyncio.sleep(delay_s)

    def _count(self, response: httpx.Response) -> None:
        self.stats.batches += 1
        self.stats.records_sent += 1
        if response.status_code == 200:
            self.stats.accepted += 1
            return
        self.stats.rejected += 1
        try:
            reason = str(response.json()["error"]["code"])
        except (ValueError, KeyError, TypeError):
            reason = f"http_{response.status_code}"
        self.stats.rejected_by_reason[reason] += 1


TRANSPORT = OsmandTransport
