"""The ``teltonika`` transport: each vehicle is one TCP device sending Codec 8 Extended.

Each device connects to ``--url tcp://HOST:PORT``, sends its IMEI, then sends packets
of up to ``batch_size`` records (at most 255) and waits for the record-count answer
before the next. A packet without a matching answer within ``request_timeout_s`` is sent
again on a new connection, with back-off, until ``give_up_after_s`` runs out. The server
deduplicates on (device_id, ts), so a resent packet stores nothing twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from typing import Any, Final
from urllib.parse import urlsplit

import msgspec

from fleetpulse.ingest.protocols.teltonika.answers import IMEI_ACCEPTED
from fleetpulse.ingest.protocols.teltonika.decoding import CODEC_8_EXTENDED, AvlRecord
from fleetpulse.ingest.protocols.teltonika.encoding import (
    MAX_RECORDS_PER_PACKET,
    encode_imei,
    encode_packet,
)
from fleetpulse.model.timestamps import parse_rfc3339_ms
from fleetpulse.sim.errors import DeliveryError, ServerUnreachableError
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.sender import SendStats

log = logging.getLogger(__name__)

DEFAULT_PORT: Final = 5027
# Simulated device ids are IMEIs: this 11-digit prefix and the 4-digit vehicle number.
IMEI_PREFIX: Final = "35000000000"
MAX_VEHICLES: Final = 9_999
# The GPS element has no accuracy field, so every record reports a typical open-sky count.
SATELLITES: Final = 9
BACKOFF_FIRST_S: Final = 0.25
BACKOFF_MAX_S: Final = 10.0


def adapt_options(options: SimulationOptions) -> SimulationOptions:
    """Give vehicles IMEIs as device ids and switch off bad records.

    The injected bad records are JSON faults (missing fields, strings for numbers) that
    a binary AVL packet cannot carry. Raises ValueError above 9,999 vehicles, because
    the IMEIs would no longer have 15 digits.
    """
    if options.vehicles > MAX_VEHICLES:
        raise ValueError(f"--protocol teltonika simulates at most {MAX_VEHICLES} vehicles")
    return msgspec.structs.replace(options, device_prefix=IMEI_PREFIX, bad_share=0.0)


def imei_for(device_id: str) -> str:
    """Return the device id itself if it is 15 digits, else 15 digits derived from it."""
    if len(device_id) == 15 and device_id.isdigit():
        return device_id
    digest = int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:8], "big")
    return f"35{digest % 10**13:013d}"


def to_avl(record: Any) -> AvlRecord:
    """Return the AVL record of a simulated DeviceRecord, with FMB IO element ids."""
    ts = record.ts if isinstance(record.ts, int) else parse_rfc3339_ms(record.ts)
    speed_kmh = round(record.speed_kmh or 0.0)
    io: dict[int, int | bytes] = {240: 1 if speed_kmh > 0 else 0}
    if record.ignition is not None:
        io[239] = 1 if record.ignition else 0
    if record.battery_v is not None:
        io[66] = round(record.battery_v * 1000)
    if record.odometer_m is not None:
        io[16] = round(record.odometer_m)
    if record.engine_rpm is not None:
        io[85] = round(record.engine_rpm)
    if record.fuel_pct is not None:
        io[89] = round(record.fuel_pct)
    if record.coolant_c is not None:
        io[115] = round(record.coolant_c * 10) & 0xFFFF
    return AvlRecord(
        ts_ms=ts,
        priority=0,
        lon=record.lon,
        lat=record.lat,
        altitude_m=round(record.altitude_m or 0.0),
        angle_deg=round(record.heading_deg or 0.0),
        satellites=SATELLITES,
        speed_kmh=speed_kmh,
        event_io_id=0,
        io=io,
    )


class _Device:
    """One simulated device: its connection, records waiting for a packet, full packets."""

    def __init__(self, imei: str) -> None:
        self.imei = imei
        self.pending: list[Any] = []
        # Two packets per device keep it busy without buffering much.
        self.queue: asyncio.Queue[list[Any]] = asyncio.Queue(maxsize=2)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.task: asyncio.Task[None] | None = None

    def disconnect(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class TeltonikaTransport:
    """Sends each device's records over its own TCP connection, in order, acknowledged."""

    def __init__(self, options: SimulationOptions) -> None:
        parts = urlsplit(options.url)
        if parts.scheme != "tcp" or not parts.hostname:
            raise ValueError(f"--url for teltonika must be tcp://HOST:PORT, got {options.url!r}")
        self.url = options.url
        self.host = parts.hostname
        self.port = parts.port or DEFAULT_PORT
        self.packet_records = min(options.batch_size, MAX_RECORDS_PER_PACKET)
        self.request_timeout_s = options.request_timeout_s
        self.give_up_after_s = options.give_up_after_s
        self.stats = SendStats()
        self._devices: dict[str, _Device] = {}
        self._failure: BaseException | None = None
        self._failed = asyncio.Event()
        self._jitter = random.Random()

    async def probe(self) -> None:
        """Raise ServerUnreachableError unless the server accepts a TCP connection."""
        try:
            _, writer = await asyncio.open_connection(self.host, self.port)
        except OSError as exc:
            raise ServerUnreachableError(self.url, str(exc) or type(exc).__name__) from exc
        writer.close()

    async def start(self) -> None:
        log.info("sending Codec 8 Extended to %s, one connection per device", self.url)

    async def add(self, records: list[Any]) -> None:
        self._raise_if_failed()
        for record in records:
            device = self._device(record.device_id)
            device.pending.append(record)
            if len(device.pending) >= self.packet_records:
                await self._enqueue(device)

    async def flush(self) -> None:
        for device in self._devices.values():
            if device.pending:
                await self._enqueue(device)

    async def submit(self, records: list[Any]) -> None:
        await self.add(records)
        await self.flush()

    async def drain(self) -> None:
        """Send everything added and wait for every answer. Raises a device's fatal error."""
        await self.flush()
        failed: asyncio.Future[Any] = asyncio.ensure_future(self._failed.wait())
        joined: asyncio.Future[Any] = asyncio.ensure_future(
            asyncio.gather(*(device.queue.join() for device in self._devices.values()))
        )
        try:
            # Wakes when every device has its answers or one device failed for good.
            await asyncio.wait({failed, joined}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            failed.cancel()
            joined.cancel()
        self._raise_if_failed()

    async def close(self) -> None:
        tasks = [device.task for device in self._devices.values() if device.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for device in self._devices.values():
            device.task = None
            device.disconnect()

    def _device(self, device_id: str) -> _Device:
        device = self._devices.get(device_id)
        if device is None:
            device = _Device(imei_for(device_id))
            device.task = asyncio.create_task(self._work(device), name=f"teltonika-{device_id}")
            self._devices[device_id] = device
        return device

    async def _enqueue(self, device: _Device) -> None:
        while device.pending:
            packet = device.pending[: self.packet_records]
            del device.pending[: self.packet_records]
            while device.queue.full():
                self._raise_if_failed()
                await asyncio.sleep(0.005)
            device.queue.put_nowait(packet)
        await asyncio.sleep(0)
        self._raise_if_failed()

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self._failed.set()

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _work(self, device: _Device) -> None:
        while True:
            records = await device.queue.get()
            try:
                await self._deliver(device, records)
            except DeliveryError as exc:
                log.error("stopping the teltonika transport: %s", exc)
                self._fail(exc)
                return
            except Exception as exc:
                log.exception(
                    "device %s failed on a packet of %d records", device.imei, len(records)
                )
                self._fail(exc)
                return
            finally:
                device.queue.task_done()

    async def _deliver(self, device: _Device, records: list[Any]) -> None:
        packet = encode_packet(CODEC_8_EXTENDED, [to_avl(record) for record in records])
        started_s = time.monotonic()
        attempt = 0
        while True:
            try:
                answer = await self._send(device, packet)
            except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                device.disconnect()
                last_error = f"{type(exc).__name__}: {exc}"
            else:
                if answer == len(records):
                    self.stats.batches += 1
                    self.stats.records_sent += len(records)
                    self.stats.accepted += answer
                    return
                device.disconnect()
                last_error = f"server acknowledged {answer} of {len(records)} records"
            attempt += 1
            delay_s = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0**attempt)
            delay_s *= self._jitter.uniform(0.5, 1.0)
            waited_s = time.monotonic() - started_s
            if waited_s + delay_s > self.give_up_after_s:
                raise DeliveryError(self.url, len(records), waited_s, last_error)
            self.stats.retries += 1
            log.debug("device %s resends in %.2f s after %s", device.imei, delay_s, last_error)
            await asyncio.sleep(delay_s)

    async def _send(self, device: _Device, packet: bytes) -> int:
        if device.writer is None:
            await self._connect(device)
        assert device.reader is not None and device.writer is not None
        device.writer.write(packet)
        await device.writer.drain()
        answer = await asyncio.wait_for(device.reader.readexactly(4), self.request_timeout_s)
        return int.from_bytes(answer, "big")

    async def _connect(self, device: _Device) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self.host, self.port), self.request_timeout_s
        )
        writer.write(encode_imei(device.imei))
        await writer.drain()
        answer = await asyncio.wait_for(reader.readexactly(1), self.request_timeout_s)
        if answer != IMEI_ACCEPTED:
            writer.close()
            raise DeliveryError(
                self.url, 0, 0.0, f"server rejected IMEI {device.imei}: list it in allowed_imeis"
            )
        device.reader, device.writer = reader, writer


TRANSPORT = TeltonikaTransport
