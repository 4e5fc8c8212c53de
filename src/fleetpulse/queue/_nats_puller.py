"""One partition's pull consumer: keeps a pull request open and buffers what it delivers.

nats-py's ``PullSubscription.fetch`` waits after the first message for the rest of a
batch, up to its timeout. The queue needs a message as soon as it arrives and must learn
at once when a new owner deleted the consumer, so this module speaks the pull protocol
itself: a request ``{"batch": n, "expires": ns}`` on ``$JS.API.CONSUMER.MSG.NEXT.<stream>
.<consumer>`` with an inbox as reply subject. The server sends up to ``n`` messages to the
inbox as they are published, then a status message (404 no messages, 408 request
expired, 409 consumer deleted and other conflicts).
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

log = logging.getLogger(__name__)

STATUS_HEADER = "Status"
DESCRIPTION_HEADER = "Description"
STATUS_HEARTBEAT = "100"
STATUS_CONFLICT = "409"
CONSUMER_DELETED = "consumer deleted"
# A request whose end status was lost (a reconnect drops the server's pending requests)
# counts as finished this long after its expiry, so the partition is requested again.
STATUS_GRACE_S = 1.0


class PartitionPuller:
    """Pull requests and the delivery buffer of one partition's consumer.

    At most one request is open, and a new one is sent only once the buffer is empty,
    so the buffer never contains more than ``batch`` messages. ``lost`` becomes True when
    the server reports that the consumer was deleted, which means another processor
    took the partition over.
    """

    def __init__(
        self,
        client: Client,
        stream: str,
        consumer: str,
        partition: int,
        batch: int,
        expires_s: float,
        on_change: Callable[[], None],
    ) -> None:
        self.partition = partition
        self.consumer = consumer
        self.buffer: deque[Msg] = deque()
        self.lost = False
        self._client = client
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}"
        self._batch = batch
        self._expires_s = expires_s
        self._on_change = on_change
        self._inbox = client.new_inbox()
        self._subscription: Subscription | None = None
        self._outstanding = 0
        self._request_deadline = 0.0

    async def start(self) -> None:
        self._subscription = await self._client.subscribe(self._inbox, cb=self._receive)

    async def stop(self) -> None:
        """Unsubscribe. Buffered messages are dropped, and the server delivers them again later."""
        subscription = self._subscription
        self._subscription = None
        self.buffer.clear()
        if subscription is not None and not self._client.is_closed:
            await subscription.unsubscribe()

    def forget_request(self) -> None:
        """Treat the open request as finished, after a reconnect dropped it on the server."""
        self._outstanding = 0

    async def request_more(self) -> None:
        """Send a pull request unless one is open or buffered messages wait to be taken."""
        if self.lost or self._subscription is None or self.buffer:
            return
        if self._outstanding > 0 and time.monotonic() < self._request_deadline:
            return
        request = {"batch": self._batch, "expires": int(self._expires_s * 1e9)}
        self._outstanding = self._batch
        self._request_deadline = time.monotonic() + self._expires_s + STATUS_GRACE_S
        await self._client.publish(
            self._next_subject, json.dumps(request).encode(), reply=self._inbox
        )

    async def _receive(self, msg: Msg) -> None:
        status = msg.headers.get(STATUS_HEADER) if msg.headers else None
        if status is None:
            self.buffer.append(msg)
            self._outstanding = max(0, self._outstanding - 1)
            self._on_change()
            return
        if status == STATUS_HEARTBEAT:
            return

        description = (msg.headers or {}).get(DESCRIPTION_HEADER, "")
        if status == STATUS_CONFLICT and description.lower() == CONSUMER_DELETED:
            log.warning(
                "partition consumer deleted, another processor took the partition over: "
                "partition=%s consumer=%s",
                self.partition,
                self.consumer,
            )
            self.lost = True
        elif status == STATUS_CONFLICT:
            log.info(
                "pull request ended early: partition=%s consumer=%s status=%s description=%s",
                self.partition,
                self.consumer,
                status,
                description,
            )
        # Every status other than a heartbeat ends the request: 404 and 408 mean no more
        # messages for it, and 409 a conflict such as a deleted consumer.
        self._outstanding = 0
        self._on_change()
