"""The notifier: takes stored events from the processor and delivers them in the background.

``submit`` is the processor's after-write callback. It only puts events in a bounded
queue and drops what does not fit, so processing never waits for a receiver. One task
matches queued events against the rules and starts a delivery task per target, at most
``max_concurrent`` at once. A delivery is retried with exponential back-off and, after
``max_attempts`` or an error that cannot pass, kept as a dead letter in memory.

Lost on restart: queued events, deliveries in progress or waiting for a retry, the dead
letters, the throttle times and the ids of events already sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx
import msgspec

from fleetpulse.config import NotifyRule, NotifySettings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import DETAIL_ONGOING
from fleetpulse.notify.errors import DeliveryError
from fleetpulse.notify.metrics import NOTIFICATIONS
from fleetpulse.notify.payload import event_body, event_email
from fleetpulse.notify.rulebook import RuleBook
from fleetpulse.notify.smtp import send_email
from fleetpulse.notify.throttle import Throttle
from fleetpulse.notify.webhook import post_webhook, redact_url
from fleetpulse.store.base import ProcessedBatch

log = logging.getLogger(__name__)

CHANNEL_WEBHOOK = "webhook"
CHANNEL_EMAIL = "email"

# Event identities (vehicle, type, ts_ms) remembered so an event emitted again while its
# episode runs is sent once; 10,000 covers minutes of events of a large fleet.
SENT_EVENTS_REMEMBERED = 10_000


class NotifyDeadLetter(msgspec.Struct, gc=False):
    """A notification given up after ``attempts`` tries, with the last error."""

    failed_at_ms: int
    rule_id: str
    channel: str
    target: str
    device_id: str
    event_type: str
    event_ts_ms: int
    attempts: int
    error: str


class Notifier:
    """Matches events against a rule book and sends them to webhooks and e-mail.

    ``start`` launches the matching task and ``close`` cancels it and every delivery.
    """

    def __init__(
        self,
        settings: NotifySettings,
        rulebook: RuleBook,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self.rulebook = rulebook
        self._throttle = Throttle(clock_s)
        self._queue: asyncio.Queue[Event] | None = None
        self._task: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(settings.max_concurrent)
        self._client: httpx.AsyncClient | None = None
        self._sent_events: OrderedDict[tuple[str, str, int], None] = OrderedDict()
        self._dead_letters: deque[NotifyDeadLetter] = deque(maxlen=settings.max_dead_letters)
        self._dropped = 0

    async def start(self) -> None:
        """Load the saved API rules and start the matching task. Raises ConfigError."""
        if self._task is not None:
            raise RuntimeError("notifier already started: call close() before starting again")
        self.rulebook.load()
        self._queue = asyncio.Queue(self._settings.queue_capacity)
        self._client = httpx.AsyncClient(follow_redirects=False)
        self._task = asyncio.create_task(self._run(), name="fleetpulse-notifier")
        log.info(
            "notifier started: rules=%s queue_capacity=%s max_attempts=%s",
            len(self.rulebook),
            self._settings.queue_capacity,
            self._settings.max_attempts,
        )

    async def close(self) -> None:
        """Cancel matching and every delivery in progress, then close the HTTP client."""
        task = self._task
        if task is None:
            return
        self._task = None
        pending = [task, *self._deliveries]
        for item in pending:
            item.cancel()
        await asyncio.wait(pending)
        if self._client is not None:
            await self._client.aclose()
        queued = self._queue.qsize() if self._queue is not None else 0
        log.info(
            "notifier stopped: queued_events_lost=%s deliveries_cancelled=%s",
            queued,
            len(pending) - 1,
        )

    def submit(self, batch: ProcessedBatch) -> None:
        """Queue a stored batch's events for matching, never waiting.

        The final copy of an event (details ``ongoing`` false) is skipped, because its
        first copy was already queued. Events beyond ``queue_capacity`` are dropped and
        counted.
        """
        queue = self._queue
        if queue is None or not batch.events or not len(self.rulebook):
            return
        dropped = 0
        for event in batch.events:
            if event.details.get(DETAIL_ONGOING) is False:
                continue
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                dropped += 1
        if dropped:
            NOTIFICATIONS.labels("-", "dropped").inc(dropped)
            self._log_dropped(dropped)

    def dead_letters(self, limit: int) -> list[NotifyDeadLetter]:
        """Return up to ``limit`` dead letters, newest first."""
        newest_first = reversed(self._dead_letters)
        return [letter for _, letter in zip(range(limit), newest_first, strict=False)]

    def forget_rule(self, rule_id: str) -> None:
        """Drop the throttle times of a deleted rule."""
        self._throttle.forget_rule(rule_id)

    async def drain(self, timeout_s: float) -> bool:
        """Wait until no event is queued and no delivery runs; False after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self._queue is not None and (self._queue.qsize() or self._deliveries):
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            event = await self._queue.get()
            try:
                await self._dispatch(event)
            except Exception:
                log.exception(
                    "notify matching failed, event skipped: vehicle=%s type=%s ts_ms=%s",
                    event.device_id,
                    event.type,
                    event.ts_ms,
                )

    async def _dispatch(self, event: Event) -> None:
        if not self._first_time(event):
            return
        throttled = 0
        for compiled in self.rulebook.rules():
            rule = compiled.rule
            if not compiled.matches(event):
                continue
            if not self._throttle.allow(rule.id, event.device_id, rule.throttle_s):
                throttled += 1
                continue
            if rule.webhook_url:
                target = redact_url(rule.webhook_url)
                await self._spawn(self._deliver(rule, event, CHANNEL_WEBHOOK, target))
            if rule.email_to:
                await self._spawn(
                    self._deliver(rule, event, CHANNEL_EMAIL, ",".join(rule.email_to))
                )
        if throttled:
            NOTIFICATIONS.labels("-", "throttled").inc(throttled)
            log.debug(
                "notification throttled: vehicle=%s type=%s rules=%s",
                event.device_id,
                event.type,
                throttled,
            )

    def _first_time(self, event: Event) -> bool:
        key = (event.device_id, event.type, event.ts_ms)
        if key in self._sent_events:
            return False
        self._sent_events[key] = None
        if len(self._sent_events) > SENT_EVENTS_REMEMBERED:
            self._sent_events.popitem(last=False)
        return True

    async def _spawn(self, delivery: Coroutine[Any, Any, None]) -> None:
        # Waiting for a slot holds up matching, and the bounded queue then drops events,
        # instead of memory growing with deliveries to a slow receiver.
        await self._slots.acquire()
        task = asyncio.create_task(delivery)
        self._deliveries.add(task)
        task.add_done_callback(self._delivery_done)

    def _delivery_done(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        self._slots.release()

    async def _deliver(self, rule: NotifyRule, event: Event, channel: str, target: str) -> None:
        send = self._sender(rule, event, channel)
        delay_s = self._settings.retry_initial_s
        attempt = 1
        while True:
            try:
                await send()
            except DeliveryError as exc:
                if not exc.retriable or attempt >= self._settings.max_attempts:
                    self._dead_letter(rule, event, channel, target, attempt, str(exc))
                    return
                log.warning(
                    "notification failed, retrying: rule=%s channel=%s vehicle=%s type=%s "
                    "attempt=%s retry_in_s=%.1f error=%s",
                    rule.id,
                    channel,
                    event.device_id,
                    event.type,
                    attempt,
                    delay_s,
                    exc,
                )
            except Exception as exc:
                log.exception(
                    "notification failed unexpectedly: rule=%s channel=%s vehicle=%s type=%s",
                    rule.id,
                    channel,
                    event.device_id,
                    event.type,
                )
                self._dead_letter(rule, event, channel, target, attempt, repr(exc))
                return
            else:
                NOTIFICATIONS.labels(channel, "sent").inc()
                log.debug(
                    "notification sent: rule=%s channel=%s vehicle=%s type=%s attempt=%s",
                    rule.id,
                    channel,
                    event.device_id,
                    event.type,
                    attempt,
                )
                return
            await asyncio.sleep(delay_s)
            delay_s = min(delay_s * 2.0, self._settings.retry_max_s)
            attempt += 1

    def _sender(
        self, rule: NotifyRule, event: Event, channel: str
    ) -> Callable[[], Awaitable[None]]:
        settings = self._settings
        if channel == CHANNEL_WEBHOOK:
            client = self._client
            assert client is not None
            body = event_body(rule.id, event)
            return lambda: post_webhook(
                client, rule.webhook_url, rule.webhook_secret, body, settings.timeout_s
            )
        message = event_email(rule.id, event, settings.smtp_from, rule.email_to)
        return lambda: send_email(settings, message)

    def _dead_letter(
        self, rule: NotifyRule, event: Event, channel: str, target: str, attempts: int, error: str
    ) -> None:
        NOTIFICATIONS.labels(channel, "dead_lettered").inc()
        log.warning(
            "notification dead-lettered: rule=%s channel=%s vehicle=%s type=%s "
            "attempts=%s error=%s",
            rule.id,
            channel,
            event.device_id,
            event.type,
            attempts,
            error,
        )
        self._dead_letters.append(
            NotifyDeadLetter(
                failed_at_ms=time.time_ns() // 1_000_000,
                rule_id=rule.id,
                channel=channel,
                target=target,
                device_id=event.device_id,
                event_type=event.type,
                event_ts_ms=event.ts_ms,
                attempts=attempts,
                error=error,
            )
        )

    def _log_dropped(self, dropped: int) -> None:
        # Logged at the 1st, 10th, 100th, ... drop, so a stuck receiver cannot flood the log.
        before = self._dropped
        self._dropped += dropped
        if len(str(before)) != len(str(self._dropped)) or before == 0:
            log.warning(
                "notify queue full, events dropped: dropped_total=%s queue_capacity=%s",
                self._dropped,
                self._settings.queue_capacity,
            )
