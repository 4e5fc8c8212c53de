"""Receivers and notifier factories for the notification tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from fleetpulse.config import NotifyRule, NotifySettings
from fleetpulse.model.event import Event
from fleetpulse.notify.notifier import Notifier
from fleetpulse.notify.rulebook import RuleBook
from fleetpulse.store.base import ProcessedBatch
from tests.notify.receivers import HttpReceiver, SmtpReceiver

# 2024-05-01 08:00:00 UTC, a Wednesday: 10:00 in Berlin (CEST).
T0_MS = 1_714_550_400_000
SECRET = "test-secret"

# Short waits between attempts, so retry tests stay fast.
FAST_RETRIES = {"retry_initial_s": 0.01, "retry_max_s": 0.05}


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    server = HttpReceiver()
    await server.start()
    yield server
    await server.close()


@pytest.fixture
async def smtp_receiver() -> AsyncIterator[SmtpReceiver]:
    server = SmtpReceiver()
    await server.start()
    yield server
    await server.close()


def make_event(
    device_id: str = "truck-7",
    event_type: str = "overspeed",
    severity: str = "warning",
    ts_ms: int = T0_MS,
    **details: Any,
) -> Event:
    return Event(
        device_id=device_id, ts_ms=ts_ms, type=event_type, severity=severity, details=details
    )


def batch_of(*events: Event) -> ProcessedBatch:
    return ProcessedBatch(events=list(events))


def make_rule(**fields: Any) -> NotifyRule:
    fields.setdefault("id", "rule-1")
    fields.setdefault("throttle_s", 0.0)
    return msgspec.convert(fields, NotifyRule)


@pytest.fixture
async def notifiers(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """Build started notifiers from rules and [notify] settings; close them at the end."""
    started: list[Notifier] = []

    async def start(
        rules: list[NotifyRule], clock_s: Callable[[], float] | None = None, **settings: Any
    ) -> Notifier:
        values = {**FAST_RETRIES, **settings}
        notify = msgspec.structs.replace(NotifySettings(), **values)
        book = RuleBook(rules, tmp_path / "data", smtp_configured=bool(notify.smtp_host))
        notifier = Notifier(notify, book) if clock_s is None else Notifier(notify, book, clock_s)
        await notifier.start()
        started.append(notifier)
        return notifier

    yield start
    for notifier in started:
        await notifier.close()
