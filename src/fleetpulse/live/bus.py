"""The live bus: carries what the live hub needs from the processor to the hub.

The processor calls ``publish`` after every store write, and the bus hands the batch's
vehicle views and events to the handler set with ``subscribe`` (the hub's ``publish``).

- ``LocalLiveBus`` calls the handler directly. ``fleetpulse run`` uses it, because the
  processor and the hub share one process.
- ``NatsLiveBus`` sends each update as a msgpack message on a NATS core subject
  (``[live] subject``). Processes of the process role publish to it, and every process
  of the API role subscribes, so each API process streams the updates of every
  processor.

NATS core subjects are at-most-once: a message sent while no API process is connected
or while a connection is down is lost. For events that loss is repaired by the hub,
because its pump reads every stored event after the last id it handed out whenever the
next message with events arrives. A lost vehicle view is replaced by the vehicle's next
one. A lost update of an event already stored (an episode that ended) is not repaired.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from fleetpulse.errors import ConfigError, FleetpulseError
from fleetpulse.metrics import LIVE_BUS_MESSAGES
from fleetpulse.model.event import Event
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.store.base import ProcessedBatch, VehicleSnapshot

if TYPE_CHECKING:
    from fleetpulse.config import Settings

log = logging.getLogger(__name__)

BatchHandler = Callable[[ProcessedBatch], None]

# Views and events per message. A view takes about 400 bytes in msgpack and an event about
# 150, so a message stays under 300 KB, below the 1 MiB max_payload that nats-server
# 2.9.10 announces by default.
ITEMS_PER_MESSAGE = 500

# Messages waiting to be sent while the NATS connection is slow or down. Beyond it the
# oldest are dropped and counted, so the processor never waits for the bus.
MAX_PENDING_MESSAGES = 2_000

# Drops are logged at the 1st, 10th, 100th, ... message, not each time.
LOG_EVERY_POWER = 10

CONNECT_TIMEOUT_S = 5.0
# nats-py retries a lost connection forever with this wait between attempts. With that
# setting its first connect never gives up either, so start() bounds it itself.
RECONNECT_WAIT_S = 1.0
START_TIMEOUT_S = 10.0

BusKind = Literal["local", "nats"]


class LiveUpdate(msgspec.Struct, gc=False):
    """One bus message: vehicle views and events of one stored batch, or part of one."""

    views: list[VehicleView] = []
    events: list[Event] = []


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(LiveUpdate)


class LiveBusError(FleetpulseError):
    """The bus cannot connect to its server. A later start may succeed."""

    retriable = True


class LiveBus(abc.ABC):
    """Carries stored batches from the processor to the live hub."""

    def __init__(self) -> None:
        self._handler: BatchHandler | None = None

    def subscribe(self, handler: BatchHandler) -> None:
        """Set the function that receives every update. Call it before ``start``."""
        self._handler = handler

    @abc.abstractmethod
    async def start(self) -> None:
        """Connect the bus. Raises LiveBusError when the server cannot be reached."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Disconnect the bus. Safe to call twice."""

    @abc.abstractmethod
    def publish(self, batch: ProcessedBatch) -> None:
        """Send a stored batch's views and events to the subscribers, never waiting."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Return the bus kind and address for the start log, without credentials."""


class LocalLiveBus(LiveBus):
    """The bus inside one process: ``publish`` calls the handler at once."""

    async def start(self) -> None:
        log.debug("local live bus started")

    async def close(self) -> None:
        log.debug("local live bus stopped")

    def publish(self, batch: ProcessedBatch) -> None:
        if self._handler is not None:
            self._handler(batch)

    def describe(self) -> str:
        return "local"


class NatsLiveBus(LiveBus):
    """The bus over a NATS core subject, for processes on several machines."""

    def __init__(self, url: str, subject: str, name: str) -> None:
        super().__init__()
        self._url = url
        self._subject = subject
        self._name = name
        self._client: Any = None
        self._subscription: Any = None
        self._pending: collections.deque[bytes] = collections.deque()
        self._pending_ready = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None
        self.sent_messages = 0
        self.received_messages = 0
        self.dropped_messages = 0
        self.failed_messages = 0
        self.undecodable_messages = 0

    async def start(self) -> None:
        import nats
        from nats.errors import NoServersError

        connect = nats.connect(
            servers=[url.strip() for url in self._url.split(",")],
            name=self._name,
            connect_timeout=CONNECT_TIMEOUT_S,
            max_reconnect_attempts=-1,
            reconnect_time_wait=RECONNECT_WAIT_S,
            error_cb=self._on_error,
            disconnected_cb=self._on_disconnected,
            reconnected_cb=self._on_reconnected,
        )
        try:
            self._client = await asyncio.wait_for(connect, START_TIMEOUT_S)
        except (NoServersError, OSError, TimeoutError) as exc:
            raise LiveBusError(
                f"live bus cannot connect to NATS at {_redact(self._url)} within "
                f"{START_TIMEOUT_S:g} s: {exc!r}; start nats-server or fix [nats] url"
            ) from exc
        if self._handler is not None:
            self._subscription = await self._client.subscribe(self._subject, cb=self._receive)
        self._sender = asyncio.create_task(self._send_loop(), name="fleetpulse-live-bus")
        log.info(
            "live bus started: kind=nats url=%s subject=%s subscribed=%s",
            _redact(self._url),
            self._subject,
            self._subscription is not None,
        )

    async def close(self) -> None:
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
            self._sender = None
        client = self._client
        self._client = None
        if client is not None:
            unsent = len(self._pending)
            # drain() sends what nats-py buffered and ends the subscription cleanly.
            with contextlib.suppress(Exception):
                await client.drain()
            log.info(
                "live bus stopped: sent=%s received=%s dropped=%s failed=%s unsent=%s",
                self.sent_messages,
                self.received_messages,
                self.dropped_messages,
                self.failed_messages,
                unsent,
            )

    def publish(self, batch: ProcessedBatch) -> None:
        if self._client is None or not (batch.vehicles or batch.events):
            return
        views = [snapshot.view for snapshot in batch.vehicles]
        for start in range(0, max(len(views), len(batch.events)), ITEMS_PER_MESSAGE):
            update = LiveUpdate(
                views=views[start : start + ITEMS_PER_MESSAGE],
                events=batch.events[start : start + ITEMS_PER_MESSAGE],
            )
            self._pending.append(_encoder.encode(update))
        while len(self._pending) > MAX_PENDING_MESSAGES:
            self._pending.popleft()
            self.dropped_messages += 1
            LIVE_BUS_MESSAGES.labels("dropped").inc()
            if _is_power_of(self.dropped_messages, LOG_EVERY_POWER):
                log.warning(
                    "live bus backlog over %s messages, dropping the oldest: dropped=%s subject=%s",
                    MAX_PENDING_MESSAGES,
                    self.dropped_messages,
                    self._subject,
                )
        self._pending_ready.set()

    def describe(self) -> str:
        return f"nats {_redact(self._url)} subject {self._subject}"

    async def _send_loop(self) -> None:
        while True:
            await self._pending_ready.wait()
            self._pending_ready.clear()
            while self._pending:
                data = self._pending.popleft()
                try:
                    await self._client.publish(self._subject, data)
                except Exception as exc:  # nats-py raises several unrelated types here
                    self.failed_messages += 1
                    LIVE_BUS_MESSAGES.labels("failed").inc()
                    if _is_power_of(self.failed_messages, LOG_EVERY_POWER):
                        log.warning(
                            "live bus publish failed, update lost: subject=%s failed=%s error=%r",
                            self._subject,
                            self.failed_messages,
                            exc,
                        )
                else:
                    self.sent_messages += 1
                    LIVE_BUS_MESSAGES.labels("sent").inc()

    async def _receive(self, message: Any) -> None:
        try:
            update = _decoder.decode(message.data)
        except msgspec.DecodeError as exc:
            self.undecodable_messages += 1
            LIVE_BUS_MESSAGES.labels("undecodable").inc()
            if _is_power_of(self.undecodable_messages, LOG_EVERY_POWER):
                log.warning(
                    "live bus message cannot be decoded, skipped: subject=%s bytes=%s "
                    "undecodable=%s error=%s",
                    message.subject,
                    len(message.data),
                    self.undecodable_messages,
                    exc,
                )
            return
        self.received_messages += 1
        LIVE_BUS_MESSAGES.labels("received").inc()
        handler = self._handler
        if handler is None:
            return
        handler(
            ProcessedBatch(
                events=update.events,
                vehicles=[VehicleSnapshot(view=view, state=b"") for view in update.views],
            )
        )

    async def _on_error(self, exc: Exception) -> None:
        log.warning("live bus connection error: url=%s error=%r", _redact(self._url), exc)

    async def _on_disconnected(self) -> None:
        log.warning("live bus disconnected, reconnecting: url=%s", _redact(self._url))

    async def _on_reconnected(self) -> None:
        log.info("live bus reconnected: url=%s", _redact(self._url))


def bus_kind(settings: Settings) -> BusKind:
    """Return the bus ``[live] bus`` selects: "auto" means NATS with a JetStream queue."""
    chosen = settings.live.bus
    if chosen == "auto":
        return "nats" if settings.queue.backend == "jetstream" else "local"
    return chosen


def open_live_bus(settings: Settings, name: str) -> LiveBus:
    """Build the bus selected by ``[live] bus``; ``name`` labels the NATS connection."""
    kind = bus_kind(settings)
    if kind == "local":
        return LocalLiveBus()
    url = settings.nats.url
    if not url:
        raise ConfigError("[live] bus is nats but [nats] url is empty; set the NATS server URL")
    return NatsLiveBus(url, settings.live.subject, name)


def _redact(url: str) -> str:
    from fleetpulse.queue.jetstream import redact_url

    return redact_url(url)


def _is_power_of(count: int, base: int) -> bool:
    while count % base == 0:
        count //= base
    return count == 1
