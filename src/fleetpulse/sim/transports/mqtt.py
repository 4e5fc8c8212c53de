"""The ``mqtt`` transport: publishes each device's records with QoS 1 to
``fleet/<device_id>/telemetry`` on the broker at ``--url mqtt://HOST:PORT``.

Records of one device are published as JSON arrays of up to ``batch_size`` records, in
order, over one MQTT 5 connection. ``stats.accepted`` counts records whose message the
broker acknowledged (PUBACK); the broker's acknowledgement does not tell whether
fleetpulse accepted them, so rejects show up only in fleetpulse's dead letters.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from typing import Any, Final
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from fleetpulse.sim.errors import DeliveryError, ServerUnreachableError
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.sender import SendStats
from fleetpulse.sim.wire import encode_batch

log = logging.getLogger(__name__)

DEFAULT_PORT: Final = 1883
TOPIC_TEMPLATE: Final = "fleet/{device_id}/telemetry"
PUBLISH_QOS: Final = 1
# Messages in flight before publish() waits for acknowledgements: bounds memory.
MAX_IN_FLIGHT: Final = 200


class MqttTransport:
    """Publishes records to a broker and counts the acknowledged ones in ``stats``."""

    def __init__(self, options: SimulationOptions) -> None:
        parts = urlsplit(options.url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise ValueError(f"--url for mqtt must be mqtt://HOST:PORT, got {options.url!r}")
        self.url = options.url
        self.host = parts.hostname
        self.port = parts.port or DEFAULT_PORT
        self.batch_size = options.batch_size
        self.request_timeout_s = options.request_timeout_s
        self.give_up_after_s = options.give_up_after_s
        self.stats = SendStats()
        self._pending: dict[str, list[Any]] = {}
        self._in_flight: list[tuple[paho.MQTTMessageInfo, int]] = []
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"fleetpulse-sim-{uuid.uuid4().hex[:8]}",
            protocol=paho.MQTTv5,
        )
        self._client.max_inflight_messages_set(MAX_IN_FLIGHT)
        self._client.max_queued_messages_set(0)

    async def probe(self) -> None:
        """Raise ServerUnreachableError unless the broker accepts a TCP connection."""
        try:
            await asyncio.to_thread(
                socket.create_connection, (self.host, self.port), self.request_timeout_s
            )
        except OSError as exc:
            raise ServerUnreachableError(self.url, str(exc) or type(exc).__name__) from exc

    async def start(self) -> None:
        await asyncio.to_thread(self._client.connect, self.host, self.port)
        self._client.loop_start()
        log.info("publishing QoS %d to %s topic %s", PUBLISH_QOS, self.url, TOPIC_TEMPLATE)

    async def add(self, records: list[Any]) -> None:
        for record in records:
            pending = self._pending.setdefault(record.device_id, [])
            pending.append(record)
            if len(pending) >= self.batch_size:
                await self._publish(record.device_id)

    async def flush(self) -> None:
        for device_id in [key for key, records in self._pending.items() if records]:
            await self._publish(device_id)

    async def submit(self, records: list[Any]) -> None:
        await self.add(records)
        await self.flush()

    async def drain(self) -> None:
        """Publish everything added and wait for the broker's acknowledgements."""
        await self.flush()
        await self._settle(0)

    async def close(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    async def _publish(self, device_id: str) -> None:
        records = self._pending.pop(device_id)
        topic = TOPIC_TEMPLATE.format(device_id=device_id)
        info = self._client.publish(topic, encode_batch(records), qos=PUBLISH_QOS)
        self._in_flight.append((info, len(records)))
        self.stats.batches += 1
        self.stats.records_sent += len(records)
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            await self._settle(MAX_IN_FLIGHT // 2)

    async def _settle(self, max_left: int) -> None:
        """Wait until at most ``max_left`` messages are unacknowledged.

        paho resends unacknowledged messages after a reconnect, so waiting is all it takes;
        raises DeliveryError after ``give_up_after_s``.
        """
        started_s = time.monotonic()
        while True:
            done = [item for item in self._in_flight if item[0].is_published()]
            self.stats.accepted += sum(count for _, count in done)
            self._in_flight = [item for item in self._in_flight if not item[0].is_published()]
            if len(self._in_flight) <= max_left:
                return
            waited_s = time.monotonic() - started_s
            if waited_s > self.give_up_after_s:
                records = sum(count for _, count in self._in_flight)
                raise DeliveryError(self.url, records, waited_s, "no PUBACK from the broker")
            await asyncio.sleep(0.01)


TRANSPORT = MqttTransport
