"""The distributed queue: a NATS JetStream stream shared by ingest and process processes.

One stream (``nats.stream``) has the subjects ``<subject_prefix>.<p>``, one per partition
p of ``queue.partitions``. Its retention is WorkQueue, so a message leaves the stream
when it is acknowledged and the stream contains exactly the unacknowledged messages.
Its discard policy is New with ``max_msgs = queue.capacity_records`` and ``max_bytes =
nats.max_stream_bytes``, so a full stream rejects a publish and ingest responds with 503.

``publish`` sends one message per partition that the records touch, each the msgpack
encoding of a ``list[Record]`` (as the SQLite backend stores a row), and returns once
JetStream acknowledged every one. ``fetch`` starts this process's partition ownership
(``_nats_ownership``) on its first call, so processes that only publish or read the
depth never own partitions. Each owned partition has its own durable pull consumer.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import re
import secrets
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import msgspec
import nats
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NotFoundError

from fleetpulse.errors import ConfigError, QueueError, QueueFullError
from fleetpulse.metrics import QUEUE_DEPTH
from fleetpulse.model.record import Record
from fleetpulse.queue._nats_leases import LeaseBucket
from fleetpulse.queue._nats_ownership import (
    OwnedPartition,
    PartitionOwnership,
    PartitionSettings,
)
from fleetpulse.queue.base import Delivery, OwnershipListener, Queue, partition_of

if TYPE_CHECKING:
    from fleetpulse.config import Settings

log = logging.getLogger(__name__)

# Header with the number of records in a message, read for the depth after a restart.
RECORDS_HEADER = "Fleetpulse-Records"
MSG_ID_HEADER = "Nats-Msg-Id"
# JetStream error code of a publish rejected by a stream limit (maximum messages or bytes).
STREAM_FULL_CODE = 10077
STREAM_DESCRIPTION = "fleetpulse records, partitions={}"
_PARTITIONS_IN_DESCRIPTION = re.compile(r"partitions=(\d+)")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_SUBJECT_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")

# At start, the record counts of up to this many pending messages are read, all of them
# when the stream has no more, for the depth estimate.
DEPTH_SAMPLE_MESSAGES = 1000
DEPTH_SAMPLE_MAX_BYTES = 64 * 1024 * 1024
# Maximum messages whose record count this process keeps. Beyond it, depth() estimates.
KNOWN_MESSAGES_MAX = 100_000
# Wait at close for publishes in progress: longer than one publish with all its attempts.
CLOSE_PUBLISH_MARGIN_S = 1.0
# The health check's bound on the stream info request, in seconds. Short, because
# /healthz waits for it and a load balancer times out its probe.
CHECK_TIMEOUT_S = 2.0


class JetStreamQueue(Queue):
    """The NATS JetStream queue (``[queue] backend = "jetstream"``), shared by processes."""

    def __init__(self, settings: Settings) -> None:
        _validate(settings)
        self._nats = settings.nats
        self._partitions = settings.queue.partitions
        self._capacity = settings.queue.capacity_records
        self._stream = settings.nats.stream
        self._prefix = settings.nats.subject_prefix
        self._url_for_log = redact_url(settings.nats.url)
        self._owner_id = make_owner_id()
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(list[Record])
        self._msg_ids = itertools.count(1)
        self._client: Client | None = None
        self._js: JetStreamContext | None = None
        self._ownership: PartitionOwnership | None = None
        self._listener: OwnershipListener | None = None
        self._wakeup = asyncio.Event()
        self._closed = False
        self._refresh_task: asyncio.Task[None] | None = None
        self._publishing = 0
        self._publishes_done = asyncio.Event()
        self._publishes_done.set()
        self._next_partition = 0
        # Depth accounting, see depth().
        self._messages = 0
        self._known: dict[int, int] = {}
        self._known_records = 0
        self._seen_messages = 0
        self._seen_records = 0
        self._local_changes = 0

    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, create or update the stream, and read the depth.

        Raises QueueError when the server cannot be reached, JetStream is not enabled,
        or the stream exists with another partition count or retention.
        """
        try:
            self._client = await nats.connect(
                servers=[url.strip() for url in self._nats.url.split(",")],
                name=f"fleetpulse-{self._owner_id}",
                connect_timeout=self._nats.connect_timeout_s,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                error_cb=self._on_error,
                disconnected_cb=self._on_disconnected,
                reconnected_cb=self._on_reconnected,
            )
            self._js = self._client.jetstream(timeout=self._nats.request_timeout_s)
            await self._ensure_stream()
            await self._read_depth_at_start()
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            await self._close_client()
            raise QueueError(
                f"cannot open the JetStream queue: stream {self._stream} on "
                f"{self._url_for_log}: {exc!r}. Check that nats-server runs with JetStream "
                "enabled (-js) and that [nats] url points to it"
            ) from exc

        leases = LeaseBucket(
            self._js, f"{self._stream}-leases", self._owner_id, self._nats.lease_ttl_s
        )
        self._ownership = PartitionOwnership(
            self._client,
            self._js,
            leases,
            PartitionSettings(
                stream=self._stream,
                subject_prefix=self._prefix,
                partitions=self._partitions,
                lease_ttl_s=self._nats.lease_ttl_s,
                ack_wait_s=self._nats.ack_wait_s,
                pull_batch=self._nats.pull_batch,
            ),
            self._wakeup.set,
        )
        self._refresh_task = asyncio.create_task(
            self._refresh_depth_forever(), name="fleetpulse-queue-depth"
        )
        log.info(
            "queue opened: backend=jetstream url=%s stream=%s partitions=%s owner=%s depth=%s",
            self._url_for_log,
            self._stream,
            self._partitions,
            self._owner_id,
            self.depth(),
        )

    async def close(self) -> None:
        """Finish publishes in progress, release owned partitions and disconnect.

        Safe to call twice. Messages handed out and not acknowledged stay in the stream
        and go to the next owner of their partition.
        """
        if self._closed:
            return
        self._closed = True
        self._wakeup.set()
        wait_s = self._nats.request_timeout_s * self._nats.publish_attempts + CLOSE_PUBLISH_MARGIN_S
        try:
            await asyncio.wait_for(self._publishes_done.wait(), wait_s)
        except TimeoutError:
            log.warning("publishes still in progress at close: count=%s", self._publishing)
        if self._refresh_task is not None:
            self._refresh_task.cancel()
            await asyncio.wait([self._refresh_task])
        if self._ownership is not None:
            connected = self._client is not None and self._client.is_connected
            await self._ownership.stop(release=connected)
        await self._close_client()
        log.info("queue closed: stream=%s owner=%s", self._stream, self._owner_id)

    # -- publish ----------------------------------------------------------------------

    async def publish(self, records: Sequence[Record]) -> None:
        """Publish records, one message per partition, and return once all are stored.

        Raises QueueFullError when the estimated depth plus these records exceeds
        ``queue.capacity_records`` or the stream rejects a message for its limits, and
        QueueError when a publish fails after ``nats.publish_attempts`` attempts.
        NOTE: a failed publish may still be stored: when one partition's message fails
        and others were stored, or when the NATS client sends a message it buffered
        during a reconnect after the attempts ran out. The caller's retry then stores
        the records again, and the processor finds them to be duplicates.
        """
        count = len(records)
        if count == 0:
            return
        if self._closed or self._js is None:
            raise QueueError(f"publish failed: the JetStream queue {self._stream} is not open")
        if self._client is not None and not self._client.is_connected:
            # Fail at once, so ingest responds with 503 now instead of after every attempt's
            # timeout. Nothing was sent, so the client's retry publishes the records once.
            raise QueueError(
                f"publish failed: not connected to NATS at {self._url_for_log}, reconnecting; "
                "retry later, and check that nats-server is running"
            )
        depth = self.depth()
        if depth + count > self._capacity:
            raise QueueFullError(depth, self._capacity)

        groups: dict[int, list[Record]] = {}
        for record in records:
            groups.setdefault(partition_of(record.device_id, self._partitions), []).append(record)

        self._publishing += 1
        self._publishes_done.clear()
        try:
            results = await asyncio.gather(
                *(self._publish_group(partition, group) for partition, group in groups.items()),
                return_exceptions=True,
            )
        finally:
            self._publishing -= 1
            if self._publishing == 0:
                self._publishes_done.set()
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            full = [error for error in errors if isinstance(error, QueueFullError)]
            raise (full or errors)[0]

    async def _publish_group(self, partition: int, records: list[Record]) -> None:
        js = self._js
        assert js is not None
        subject = f"{self._prefix}.{partition}"
        payload = self._encoder.encode(records)
        msg_id = f"{self._owner_id}-{next(self._msg_ids)}"
        headers = {MSG_ID_HEADER: msg_id, RECORDS_HEADER: str(len(records))}
        attempts = self._nats.publish_attempts
        for attempt in range(1, attempts + 1):
            try:
                ack = await js.publish(
                    subject,
                    payload,
                    timeout=self._nats.request_timeout_s,
                    stream=self._stream,
                    headers=headers,
                )
            except APIError as exc:
                if exc.err_code == STREAM_FULL_CODE:
                    raise QueueFullError(self.depth(), self._capacity) from exc
                raise QueueError(
                    f"publish to {subject} rejected by JetStream: {exc!r}; check the stream "
                    f"{self._stream} on {self._url_for_log}"
                ) from exc
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
                # The same message id again: JetStream stores it once even if the lost
                # reply was for a stored message.
                if attempt == attempts:
                    raise QueueError(
                        f"publish to {subject} failed after {attempts} attempts: {exc!r}; "
                        f"check that nats-server at {self._url_for_log} runs with JetStream"
                    ) from exc
                log.warning(
                    "publish failed, retrying: subject=%s msg_id=%s attempt=%s error=%r",
                    subject,
                    msg_id,
                    attempt,
                    exc,
                )
                continue
            except nats.errors.Error as exc:
                raise QueueError(f"publish to {subject} failed: {exc!r}") from exc

            if ack.duplicate:
                log.info(
                    "publish stored by an earlier attempt: subject=%s msg_id=%s attempt=%s",
                    subject,
                    msg_id,
                    attempt,
                )
            # A duplicate on a later attempt is this publish, stored by an attempt whose
            # reply was lost, so it counts once.
            if not ack.duplicate or attempt > 1:
                self._count_published(ack.seq, len(records))
            return

    # -- fetch and ack ----------------------------------------------------------------

    async def fetch(self, max_records: int, timeout_s: float) -> list[Delivery]:
        """Return up to about ``max_records`` records of the partitions this process owns.

        The first call claims a share of the partitions, which can take longer than
        ``timeout_s``. Returns at least one message when any is buffered, even one larger
        than ``max_records``. Each message is one delivery with ``offset`` its stream
        sequence and ``token`` the NATS message. Returns an empty list on timeout or
        once the queue is closed.
        """
        ownership = self._require_ownership("fetch")
        try:
            await ownership.ensure_started()
        except (nats.errors.Error, TimeoutError) as exc:
            raise QueueError(
                f"fetch failed: cannot claim partitions of stream {self._stream} on "
                f"{self._url_for_log}: {exc!r}"
            ) from exc

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self._closed:
            # Cleared before the buffers are read: a message that arrives later sets it again.
            self._wakeup.clear()
            await self._tell_listener(ownership)
            deliveries = await self._take(ownership, max_records)
            await self._request_more(ownership)
            if deliveries:
                return deliveries

            remaining_s = deadline - loop.time()
            if remaining_s <= 0:
                return []
            try:
                await asyncio.wait_for(self._wakeup.wait(), remaining_s)
            except TimeoutError:
                return []
        return []

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge deliveries and return once JetStream confirmed each one.

        Acknowledging twice is harmless. A delivery of a partition that another process
        took over is skipped: its new owner gets the message again. Raises QueueError
        when an acknowledgement times out or the connection is lost; the message is
        then delivered again after ``nats.ack_wait_s``.
        """
        if not deliveries:
            return
        ownership = self._require_ownership("ack")
        results = await asyncio.gather(
            *(self._ack_one(ownership, delivery) for delivery in deliveries),
            return_exceptions=True,
        )
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            raise QueueError(
                f"ack failed for {len(errors)} of {len(deliveries)} messages of stream "
                f"{self._stream}: {errors[0]!r}"
            ) from errors[0]

    async def _ack_one(self, ownership: PartitionOwnership, delivery: Delivery) -> None:
        msg: Msg = delivery.token
        owned = ownership.get(delivery.partition)
        if owned is None or owned.puller.consumer != msg.metadata.consumer:
            log.info(
                "ack skipped, the partition moved to another process: partition=%s offset=%s",
                delivery.partition,
                delivery.offset,
            )
            return
        try:
            await msg.ack_sync(timeout=self._nats.request_timeout_s)
        except nats.errors.MsgAlreadyAckdError:
            return
        except nats.errors.NoRespondersError:
            # No subscriber serves the consumer's ack subject, because a new owner deleted
            # the consumer.
            ownership.mark_lost(delivery.partition, "acknowledgement found no consumer")
            return
        owned.in_flight.discard(delivery.offset)
        self._count_acknowledged(delivery.offset)

    async def _take(self, ownership: PartitionOwnership, max_records: int) -> list[Delivery]:
        partitions = ownership.handout_partitions()
        if not partitions:
            return []
        # Rotates the first partition between calls, so no partition waits behind others.
        start = self._next_partition % len(partitions)
        self._next_partition += 1
        ordered = partitions[start:] + partitions[:start]

        deliveries: list[Delivery] = []
        total = 0
        while total < max(1, max_records):
            took_any = False
            for owned in ordered:
                delivery = await self._take_one(owned)
                if delivery is None:
                    continue
                took_any = True
                deliveries.append(delivery)
                total += len(delivery.records)
                if total >= max_records:
                    break
            if not took_any:
                break
        return deliveries

    async def _take_one(self, owned: OwnedPartition) -> Delivery | None:
        buffer = owned.puller.buffer
        while buffer:
            msg = buffer.popleft()
            seq = msg.metadata.sequence.stream
            if seq <= owned.last_handed_seq:
                # Redelivered after ack_wait while the first delivery is still handed out.
                continue
            owned.last_handed_seq = seq
            try:
                records = self._decoder.decode(msg.data)
            except msgspec.DecodeError as exc:
                log.error(
                    "message cannot be decoded, terminating it: partition=%s offset=%s "
                    "bytes=%s error=%s",
                    owned.partition,
                    seq,
                    len(msg.data),
                    exc,
                )
                await self._terminate(msg, owned.partition, seq)
                continue
            owned.in_flight.add(seq)
            self._count_fetched(seq, len(records))
            return Delivery(owned.partition, seq, records, token=msg)
        return None

    async def _terminate(self, msg: Msg, partition: int, seq: int) -> None:
        # A terminated message is never delivered again, so one bad message cannot stop
        # its partition.
        try:
            await msg.term()
        except nats.errors.Error as exc:
            log.warning(
                "undecodable message not terminated, it comes again after ack_wait: "
                "partition=%s offset=%s error=%r",
                partition,
                seq,
                exc,
            )

    async def _request_more(self, ownership: PartitionOwnership) -> None:
        try:
            for owned in ownership.handout_partitions():
                await owned.puller.request_more()
        except nats.errors.Error as exc:
            # Pull requests are sent again on the next fetch.
            log.warning("pull request not sent: stream=%s error=%r", self._stream, exc)

    async def _tell_listener(self, ownership: PartitionOwnership) -> None:
        acquired, released = ownership.take_changes()
        if not acquired and not released:
            return
        if self._listener is not None:
            await self._listener(acquired, released)
        ownership.confirm_changes(acquired, released)
        log.info(
            "partition ownership changed: owner=%s acquired=%s released=%s owned=%s",
            self._owner_id,
            sorted(acquired),
            sorted(released),
            sorted(ownership.owned_partitions()),
        )

    # -- ownership API ----------------------------------------------------------------

    async def check(self) -> str | None:
        """Check that the NATS client is connected and the stream returns its info."""
        client, js = self._client, self._js
        if self._closed or client is None or js is None:
            return f"queue unreachable: the JetStream queue {self._stream} is not open"
        if not client.is_connected:
            return (
                f"queue unreachable: not connected to NATS at {self._url_for_log}, "
                "reconnecting; check that nats-server is running"
            )
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await js.stream_info(self._stream)
        except (nats.errors.Error, TimeoutError) as exc:
            return (
                f"queue unreachable: stream {self._stream} on {self._url_for_log} did not "
                f"answer within {CHECK_TIMEOUT_S:g} s ({exc!r}); check nats-server and JetStream"
            )
        return None

    def owned_partitions(self) -> frozenset[int] | None:
        """Return the partitions whose records this process hands out; empty before fetch."""
        if self._ownership is None:
            return frozenset()
        return self._ownership.owned_partitions()

    def set_ownership_listener(self, listener: OwnershipListener | None) -> None:
        self._listener = listener

    # -- depth ------------------------------------------------------------------------

    def depth(self) -> int:
        """Return the records in the stream: exact or estimated, as follows.

        The stream's message count is read every ``nats.depth_refresh_s`` and adjusted
        at once for this process's publishes and acknowledgements. When this process
        has the record count of every message in the stream (it published or fetched
        them, or read them at start), the result is exact. Otherwise it is the message
        count times the mean records per message that this process has seen.

        NOTE: a publish by another process shows only after the next refresh, so a
        processor's depth() can be 0 for up to ``depth_refresh_s`` while the stream
        contains messages it has not fetched yet.
        """
        if self._messages <= 0:
            return 0
        if len(self._known) == self._messages:
            return self._known_records
        mean = self._seen_records / self._seen_messages if self._seen_messages else 1.0
        return max(self._messages, round(self._messages * mean))

    def _count_published(self, seq: int, records: int) -> None:
        self._local_changes += 1
        self._messages += 1
        self._remember(seq, records)

    def _count_fetched(self, seq: int, records: int) -> None:
        if seq in self._known:
            return
        # Published by another process: the stream contains it even if the last refresh
        # is older than the publish.
        self._local_changes += 1
        self._remember(seq, records)
        self._messages = max(self._messages, len(self._known))
        QUEUE_DEPTH.set(self.depth())

    def _count_acknowledged(self, seq: int) -> None:
        self._local_changes += 1
        self._messages = max(0, self._messages - 1)
        records = self._known.pop(seq, None)
        if records is not None:
            self._known_records -= records
        QUEUE_DEPTH.set(self.depth())

    def _remember(self, seq: int, records: int) -> None:
        self._seen_messages += 1
        self._seen_records += records
        if seq not in self._known and len(self._known) < KNOWN_MESSAGES_MAX:
            self._known[seq] = records
            self._known_records += records
        QUEUE_DEPTH.set(self.depth())

    async def _read_depth_at_start(self) -> None:
        js = self._js
        assert js is not None
        state = (await js.stream_info(self._stream)).state
        self._messages = state.messages
        if state.messages == 0:
            return
        mean_bytes = max(1, state.bytes // state.messages)
        sample_size = max(1, min(DEPTH_SAMPLE_MESSAGES, DEPTH_SAMPLE_MAX_BYTES // mean_bytes))
        # Every message when they fit in the sample, else evenly spaced ones.
        stride = 1
        if state.messages > sample_size:
            stride = max(1, (state.last_seq - state.first_seq + 1) // sample_size)
        seq = state.first_seq
        for _ in range(sample_size):
            try:
                raw = await js.get_msg(
                    self._stream, seq=seq, subject=f"{self._prefix}.*", next=True
                )
            except NotFoundError:
                break
            records = int((raw.headers or {}).get(RECORDS_HEADER, "1"))
            self._remember(raw.seq or seq, records)
            seq = (raw.seq or seq) + stride
        log.info(
            "queue depth read: messages=%s sampled=%s depth=%s",
            state.messages,
            len(self._known),
            self.depth(),
        )

    async def _refresh_depth_forever(self) -> None:
        while True:
            await asyncio.sleep(self._nats.depth_refresh_s)
            try:
                await self._refresh_depth()
            except (nats.errors.Error, TimeoutError) as exc:
                log.debug("queue depth not refreshed: stream=%s error=%r", self._stream, exc)

    async def _refresh_depth(self) -> None:
        js = self._js
        if js is None:
            return
        changes_before = self._local_changes
        state = (await js.stream_info(self._stream)).state
        if self._local_changes != changes_before:
            # A publish or ack of this process ran meanwhile, so the reply may be older
            # than the local count. It is dropped, and the next refresh corrects the count.
            return
        self._messages = state.messages
        stale = [seq for seq in self._known if seq < state.first_seq]
        for seq in stale:
            self._known_records -= self._known.pop(seq)
        if state.messages == 0:
            self._known.clear()
            self._known_records = 0
        QUEUE_DEPTH.set(self.depth())

    # -- connection -------------------------------------------------------------------

    async def _ensure_stream(self) -> None:
        js = self._js
        assert js is not None
        config = api.StreamConfig(
            name=self._stream,
            description=STREAM_DESCRIPTION.format(self._partitions),
            subjects=[f"{self._prefix}.*"],
            retention=api.RetentionPolicy.WORK_QUEUE,
            storage=api.StorageType.FILE,
            discard=api.DiscardPolicy.NEW,
            max_msgs=self._capacity,
            max_bytes=self._nats.max_stream_bytes,
            duplicate_window=self._nats.duplicate_window_s,
        )
        try:
            info = await js.stream_info(self._stream)
        except NotFoundError:
            await js.add_stream(config)
            log.info(
                "stream created: stream=%s subjects=%s partitions=%s",
                self._stream,
                config.subjects,
                self._partitions,
            )
            return

        existing = info.config
        found = _PARTITIONS_IN_DESCRIPTION.search(existing.description or "")
        if found is None or existing.retention != api.RetentionPolicy.WORK_QUEUE:
            raise QueueError(
                f"stream {self._stream} on {self._url_for_log} exists but was not created "
                "by fleetpulse (no partition count, or retention is not WorkQueue); set "
                "[nats] stream to another name"
            )
        if int(found.group(1)) != self._partitions:
            raise QueueError(
                f"stream {self._stream} was created with {found.group(1)} partitions but "
                f"[queue] partitions = {self._partitions}; set it back to {found.group(1)}, "
                "or drain the queue and delete the stream to change it"
            )
        await js.update_stream(config)

    async def _close_client(self) -> None:
        client = self._client
        if client is None or client.is_closed:
            return
        try:
            await client.close()
        except (nats.errors.Error, OSError) as exc:
            log.warning(
                "NATS connection not closed cleanly: url=%s error=%r", self._url_for_log, exc
            )

    async def _on_error(self, exc: Exception) -> None:
        log.warning("NATS connection error: url=%s error=%r", self._url_for_log, exc)

    async def _on_disconnected(self) -> None:
        if self._closed:
            return
        log.warning("NATS connection lost, reconnecting: url=%s", self._url_for_log)

    async def _on_reconnected(self) -> None:
        client = self._client
        server = (
            redact_url(str(client.connected_url.geturl()))
            if client and client.connected_url
            else "?"
        )
        log.info("NATS connection restored: server=%s", server)
        if self._ownership is not None:
            self._ownership.forget_requests()
        self._wakeup.set()

    def _require_ownership(self, action: str) -> PartitionOwnership:
        if self._ownership is None:
            raise QueueError(f"{action} failed: the JetStream queue {self._stream} is not open")
        return self._ownership


def redact_url(url: str) -> str:
    """Return NATS server URLs without user names, passwords and tokens."""
    redacted = []
    for part in url.split(","):
        split = urlsplit(part.strip())
        if split.username is None and split.password is None:
            redacted.append(part.strip())
            continue
        netloc = split.hostname or ""
        if split.port is not None:
            netloc += f":{split.port}"
        redacted.append(urlunsplit((split.scheme, netloc, split.path, split.query, "")))
    return ",".join(redacted)


def make_owner_id() -> str:
    """Return an id for this process's leases and consumers: host, process id and a nonce."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:32] or "host"
    return f"{host}-{os.getpid()}-{secrets.token_hex(3)}"


def _validate(settings: Settings) -> None:
    nats_settings = settings.nats
    if not _NAME.match(nats_settings.stream):
        raise ConfigError(
            f"[nats] stream = {nats_settings.stream!r} is invalid; use letters, digits, - and _"
        )
    if not _SUBJECT_PREFIX.match(nats_settings.subject_prefix):
        raise ConfigError(
            f"[nats] subject_prefix = {nats_settings.subject_prefix!r} is invalid; use "
            "dot-separated tokens of letters, digits, - and _, such as fleetpulse.records"
        )
    if settings.queue.partitions < 1:
        raise ConfigError(f"[queue] partitions = {settings.queue.partitions} must be at least 1")
    positive = {
        "lease_ttl_s": nats_settings.lease_ttl_s,
        "ack_wait_s": nats_settings.ack_wait_s,
        "request_timeout_s": nats_settings.request_timeout_s,
        "connect_timeout_s": nats_settings.connect_timeout_s,
        "depth_refresh_s": nats_settings.depth_refresh_s,
        "publish_attempts": nats_settings.publish_attempts,
        "pull_batch": nats_settings.pull_batch,
    }
    for key, value in positive.items():
        if not value > 0 or math.isnan(value):
            raise ConfigError(f"[nats] {key} = {value} must be greater than 0")
