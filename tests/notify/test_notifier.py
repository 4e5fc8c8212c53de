from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fleetpulse.config import NotifySettings
from fleetpulse.notify.notifier import Notifier
from fleetpulse.notify.rulebook import RuleBook
from tests.notify.conftest import T0_MS, batch_of, make_event, make_rule
from tests.notify.receivers import HttpReceiver


class FakeClock:
    """A monotonic clock that the test moves by hand."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def event_types(receiver: HttpReceiver) -> list[str]:
    return [json.loads(request.body)["event"]["type"] for request in receiver.requests]


async def test_notifier_final_copy_not_sent_again(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    notifier = await notifiers([make_rule(webhook_url=receiver.url)])
    notifier.submit(batch_of(make_event(ongoing=True)))
    notifier.submit(batch_of(make_event(ongoing=False)))
    assert await notifier.drain(5.0)
    assert len(receiver.requests) == 1


async def test_notifier_repeated_copy_sent_once(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    notifier = await notifiers([make_rule(webhook_url=receiver.url)])
    notifier.submit(batch_of(make_event(event_type="fuel_drop", ongoing=True)))
    notifier.submit(batch_of(make_event(event_type="fuel_drop", ongoing=True)))
    assert await notifier.drain(5.0)
    assert len(receiver.requests) == 1


async def test_notifier_throttles_per_vehicle_and_rule(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    clock = FakeClock()
    rule = make_rule(webhook_url=receiver.url, throttle_s=60.0)
    notifier = await notifiers([rule], clock_s=clock)
    notifier.submit(batch_of(make_event(ts_ms=T0_MS)))
    notifier.submit(batch_of(make_event(ts_ms=T0_MS + 1000)))
    notifier.submit(batch_of(make_event(device_id="van-1", ts_ms=T0_MS + 2000)))
    assert await notifier.drain(5.0)
    devices = [json.loads(r.body)["event"]["device_id"] for r in receiver.requests]
    assert sorted(devices) == ["truck-7", "van-1"]


async def test_notifier_throttle_ends_after_interval(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    clock = FakeClock()
    rule = make_rule(webhook_url=receiver.url, throttle_s=60.0)
    notifier = await notifiers([rule], clock_s=clock)
    notifier.submit(batch_of(make_event(ts_ms=T0_MS)))
    assert await notifier.drain(5.0)
    clock.now_s += 60.0
    notifier.submit(batch_of(make_event(ts_ms=T0_MS + 1000)))
    assert await notifier.drain(5.0)
    assert len(receiver.requests) == 2


async def test_notifier_throttle_separate_per_rule(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    first = make_rule(id="first", webhook_url=receiver.url, throttle_s=60.0)
    second = make_rule(id="second", webhook_url=receiver.url, throttle_s=60.0)
    notifier = await notifiers([first, second], clock_s=FakeClock())
    notifier.submit(batch_of(make_event(ts_ms=T0_MS), make_event(ts_ms=T0_MS + 1000)))
    assert await notifier.drain(5.0)
    rules = sorted(json.loads(r.body)["rule_id"] for r in receiver.requests)
    assert rules == ["first", "second"]


async def test_notifier_sends_only_matching(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    rule = make_rule(webhook_url=receiver.url, event_types=["overspeed"], min_severity="warning")
    notifier = await notifiers([rule])
    notifier.submit(
        batch_of(
            make_event(event_type="overspeed", severity="warning", ts_ms=T0_MS),
            make_event(event_type="idling", severity="warning", ts_ms=T0_MS + 1),
            make_event(event_type="overspeed", severity="info", ts_ms=T0_MS + 2),
        )
    )
    assert await notifier.drain(5.0)
    assert event_types(receiver) == ["overspeed"]


async def test_notifier_full_queue_drops(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    notifier = await notifiers([make_rule(webhook_url=receiver.url)], queue_capacity=2)
    # submit runs without yielding to the event loop, so the matching task takes none yet.
    events = [make_event(ts_ms=T0_MS + i) for i in range(5)]
    notifier.submit(batch_of(*events))
    assert await notifier.drain(5.0)
    assert len(receiver.requests) == 2


async def test_notifier_not_started_ignores_batches(tmp_path: Path) -> None:
    book = RuleBook([make_rule(webhook_url="http://127.0.0.1:1/")], tmp_path, False)
    notifier = Notifier(NotifySettings(), book)
    notifier.submit(batch_of(make_event()))
    assert await notifier.drain(0.1)
