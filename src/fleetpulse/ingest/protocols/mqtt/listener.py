"""The MQTT subscriber: takes records from a broker and acknowledges each message (PUBACK)
only after its records are durable in the queue.

paho-mqtt runs its network loop in its own thread. ``on_message`` only hands each message to
the event loop; a consumer task there decodes a batch of messages, publishes their records
in one ``ingest_records`` call and then acknowledges them. While the queue is full the
consumer retries the same batch and acknowledges nothing, so the broker stops sending once
``receive_maximum`` messages are unacknowledged: reading pauses without dropping anything.

The session is persistent (a fixed client id, clean start off, ``session_expiry_s``), so
messages left unacknowledged by a stop or a lost connection are sent again by the broker
when fleetpulse connects again.

The broker authenticates publishers (its own users and ACLs; ``username`` and
``password`` are fleetpulse's login). With ``[auth] enabled`` a record is accepted only
for the device its topic names, and only if a device token in the key file lists that
device, else it is rejected with reason ``device_not_allowed``. Records over
``[ingest] device_rate_records_per_s`` are rejected with ``rate_limited``. Both are
dead-lettered and acknowledged, because holding one device's messages back would stall
the whole subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from fleetpulse.auth.devices import IngestGuard, record_indices
from fleetpulse.config import Settings
from fleetpulse.errors import FleetpulseError, QueueFullError
from fleetpulse.ingest.protocols.base import ProtocolListener, register
from fleetpulse.ingest.protocols.mqtt.decoding import decode_message
from fleetpulse.ingest.protocols.mqtt.topics import TopicPattern
from fleetpulse.ingest.protocols.osmand.framelog import FrameLog
from fleetpulse.ingest.service import IngestService
from fleetpulse.model.record import Record
from fleetpulse.model.timestamps import now_ms
from fleetpulse.model.validate import Reject, ValidatedBatch
from fleetpulse.model.vocabulary import RATE_LIMITED, SOURCE_MQTT

log = logging.getLogger(__name__)

# The subscription's QoS: at least once, acknowledged by fleetpulse (QoS 2 adds a round
# trip and gives nothing more, because the store keeps one record per device and time).
SUBSCRIBE_QOS: Final = 1
# Upper bound of the wait between two attempts to publish a batch while the queue is full.
MAX_RETRY_DELAY_S: Final = 30.0


@dataclass(slots=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    # The connection the message arrived on; an acknowledgement on a later one is invalid.
    connection: int


@register
class MqttListener(ProtocolListener):
    """Subscribes to ``[mqtt] topic`` on the broker at ``[mqtt] host``:``port``."""

    name = "mqtt"

    def __init__(self, settings: Settings, ingest: IngestService) -> None:
        super().__init__(settings, ingest)
        mqtt = settings.mqtt
        self._pattern = TopicPattern(mqtt.topic)
        self.subscription = self._pattern.subscription(mqtt.shared_group)
        self._frames = FrameLog(log, mqtt.log_frames)
        self.guard = IngestGuard.shared(ingest, settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: asyncio.Queue[_Message] = asyncio.Queue()
        self._client: paho.Client | None = None
        self._consumer: asyncio.Task[None] | None = None
        self._connection = 0
        self._closing = False
        self.subscribed = asyncio.Event()
        # Batches that found the queue full, for tests and monitoring.
        self.queue_full_batches = 0

    async def start(self) -> None:
        mqtt = self.settings.mqtt
        self._loop = asyncio.get_running_loop()
        self._client = self._build_client()
        properties = None
        if mqtt.protocol == "5":
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = mqtt.session_expiry_s
            properties.ReceiveMaximum = mqtt.receive_maximum
            self._client.connect_async(
                mqtt.host, mqtt.port, mqtt.keepalive_s, clean_start=False, properties=properties
            )
        else:
            self._client.connect_async(mqtt.host, mqtt.port, mqtt.keepalive_s)
        self._client.loop_start()
        self._consumer = asyncio.create_task(self._consume(), name="fleetpulse-mqtt")
        log.info(
            "mqtt subscriber started broker=%s:%d protocol=%s subscription=%s client_id=%s",
            mqtt.host,
            mqtt.port,
            mqtt.protocol,
            self.subscription,
            mqtt.client_id,
        )

    async def close(self) -> None:
        self._closing = True
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None
        client = self._client
        if client is not None:
            self._client = None
            client.disconnect()
            # loop_stop joins the network thread, which can take up to one socket timeout.
            await asyncio.to_thread(client.loop_stop)
            log.info("mqtt subscriber stopped")

    def describe(self) -> str:
        mqtt = self.settings.mqtt
        return (
            f"MQTT {mqtt.protocol} subscriber on mqtt://{mqtt.host}:{mqtt.port} "
            f"topic {self.subscription} (QoS {SUBSCRIBE_QOS})"
        )

    # --- paho callbacks, called in paho's network thread -------------------------------------

    def _build_client(self) -> paho.Client:
        mqtt = self.settings.mqtt
        if mqtt.protocol == "5":
            client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=mqtt.client_id,
                protocol=paho.MQTTv5,
                manual_ack=True,
            )
        else:
            client = paho.Client(
                CallbackAPIVersion.VERSION2,
                client_id=mqtt.client_id,
                clean_session=False,
                protocol=paho.MQTTv311,
                manual_ack=True,
            )
        if mqtt.username:
            client.username_pw_set(mqtt.username, mqtt.password or None)
        client.reconnect_delay_set(mqtt.reconnect_min_delay_s, mqtt.reconnect_max_delay_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            # paho reconnects with back-off; a wrong password fails the same way each time.
            log.error("mqtt connection rejected broker=%s:%d reason=%s", *self._broker(), reason)
            return
        self._connection += 1
        log.info(
            "mqtt connected broker=%s:%d session_present=%s",
            *self._broker(),
            flags.session_present,
        )
        client.subscribe(self.subscription, qos=SUBSCRIBE_QOS)

    def _on_disconnect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        self._call_in_loop(self.subscribed.clear)
        if not self._closing:
            log.warning(
                "mqtt connection lost broker=%s:%d reason=%s; reconnecting with back-off",
                *self._broker(),
                reason,
            )

    def _on_subscribe(
        self, client: paho.Client, userdata: Any, mid: int, reasons: Any, properties: Any
    ) -> None:
        failures = [reason for reason in reasons if reason.is_failure]
        if failures:
            log.error(
                "mqtt subscription rejected topic=%s reason=%s; check the broker's ACL and "
                "its support for shared subscriptions",
                self.subscription,
                failures[0],
            )
            return
        log.info("mqtt subscribed topic=%s", self.subscription)
        self._call_in_loop(self.subscribed.set)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        item = _Message(
            message.topic, bytes(message.payload), message.mid, message.qos, self._connection
        )
        self._call_in_loop(self._inbox.put_nowait, item)

    def _call_in_loop(self, callback: Any, *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(callback, *args)

    def _broker(self) -> tuple[str, int]:
        return self.settings.mqtt.host, self.settings.mqtt.port

    # --- the consumer task, in the event loop ------------------------------------------------

    async def _consume(self) -> None:
        max_batch = self.settings.mqtt.receive_maximum
        while True:
            batch = [await self._inbox.get()]
            while len(batch) < max_batch and not self._inbox.empty():
                batch.append(self._inbox.get_nowait())
            try:
                await self._ingest_until_durable(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug: the messages stay unacknowledged and come back after a reconnect.
                log.exception("mqtt batch failed messages=%d; not acknowledged", len(batch))

    async def _ingest_until_durable(self, batch: list[_Message]) -> None:
        delay_s = float(self.settings.ingest.retry_after_s)
        while True:
            # Messages of an earlier connection are sent again by the broker, so they are
            # dropped here rather than stored twice.
            batch = [message for message in batch if message.connection == self._connection]
            if not batch:
                return
            try:
                await self._ingest(batch)
            except FleetpulseError as exc:
                if not exc.retriable:
                    raise
                if isinstance(exc, QueueFullError):
                    self.queue_full_batches += 1
                else:
                    log.error("mqtt ingest failed, retrying in %.1f s: %s", delay_s, exc)
                await asyncio.sleep(delay_s)
                delay_s = min(delay_s * 2, MAX_RETRY_DELAY_S)
                continue
            self._ack(batch)
            return

    async def _ingest(self, batch: list[_Message]) -> None:
        received_at_ms = now_ms()
        records: list[Record] = []
        rejects: list[Reject] = []
        for message in batch:
            self._frames.frame("in", message.topic, message.payload)
            device_id = self._pattern.device_id(message.topic)
            decoded = decode_message(message.payload, device_id, received_at_ms, self.settings)
            if self.guard.active:
                decoded = self._guard(decoded, message, device_id)
            records.extend(decoded.records)
            rejects.extend(decoded.rejects)
            if decoded.rejects:
                log.debug(
                    "mqtt message rejected topic=%s mid=%d rejects=%d first=%s",
                    message.topic,
                    message.mid,
                    len(decoded.rejects),
                    decoded.rejects[0].detail,
                )
        await self.ingest.ingest_records(
            records, rejects, SOURCE_MQTT, received_at_ms=received_at_ms
        )

    def _guard(
        self, decoded: ValidatedBatch, message: _Message, topic_device: str | None
    ) -> ValidatedBatch:
        """Reject records of devices the topic does not allow, and those over the rate."""
        guarded = self.guard.filter_topic_devices(
            decoded.records, decoded.rejects, message.topic, topic_device
        )
        decision = self.guard.take(guarded.records)
        if decision.admitted:
            return ValidatedBatch(guarded.records, guarded.rejects)
        log.info(
            "mqtt message rate limited topic=%s mid=%d records=%d",
            message.topic,
            message.mid,
            len(guarded.records),
        )
        limit = self.settings.ingest.dead_letter_raw_bytes
        detail = (
            f"device sends more than {self.guard.limiter.rate_per_s:g} records/s "
            "([ingest] device_rate_records_per_s); the message is dropped"
        )
        indices = record_indices(len(guarded.records), (item.index for item in guarded.rejects))
        limited = [
            Reject(index, RATE_LIMITED, detail, message.payload[:limit], record.device_id)
            for index, record in zip(indices, guarded.records, strict=True)
        ]
        return ValidatedBatch([], sorted([*guarded.rejects, *limited], key=lambda r: r.index))

    def _ack(self, batch: list[_Message]) -> None:
        client = self._client
        if client is None:
            return
        for message in batch:
            if message.connection == self._connection:
                client.ack(message.mid, message.qos)
