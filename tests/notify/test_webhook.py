from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any

from fleetpulse.notify.webhook import SIGNATURE_HEADER, sign_body
from tests.notify.conftest import SECRET, T0_MS, batch_of, make_event, make_rule
from tests.notify.receivers import HttpReceiver


def verify(secret: str, body: bytes, header: str) -> bool:
    """Check a signature as a receiver would: recompute and compare in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header)


def test_sign_body_is_hmac_sha256() -> None:
    body = b'{"rule_id":"r"}'
    assert verify(SECRET, body, sign_body(SECRET, body))


def test_sign_body_depends_on_secret() -> None:
    body = b'{"rule_id":"r"}'
    assert not verify("other-secret", body, sign_body(SECRET, body))


async def test_webhook_posts_signed_event(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    rule = make_rule(webhook_url=receiver.url, webhook_secret=SECRET)
    notifier = await notifiers([rule])
    notifier.submit(batch_of(make_event(speed_kmh=131.0)))
    await receiver.wait_for(1)

    (request,) = receiver.requests
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/json"
    assert verify(SECRET, request.body, request.headers[SIGNATURE_HEADER.lower()])
    payload = json.loads(request.body)
    assert payload["rule_id"] == "rule-1"
    assert payload["event"]["type"] == "overspeed"
    assert payload["event"]["ts_ms"] == T0_MS
    assert payload["event"]["details"] == {"speed_kmh": 131.0}


async def test_webhook_without_secret_unsigned(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    notifier = await notifiers([make_rule(webhook_url=receiver.url)])
    notifier.submit(batch_of(make_event()))
    await receiver.wait_for(1)
    assert SIGNATURE_HEADER.lower() not in receiver.requests[0].headers


async def test_webhook_retries_until_success(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    receiver.fail_first = 2
    notifier = await notifiers([make_rule(webhook_url=receiver.url)], max_attempts=5)
    notifier.submit(batch_of(make_event()))
    await receiver.wait_for(3)
    assert await notifier.drain(5.0)
    assert len(receiver.requests) == 3
    assert receiver.requests[0].body == receiver.requests[2].body
    assert notifier.dead_letters(10) == []


async def test_webhook_dead_letter_after_max_attempts(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    receiver.fail_first = 100
    notifier = await notifiers([make_rule(webhook_url=receiver.url)], max_attempts=3)
    notifier.submit(batch_of(make_event()))
    assert await notifier.drain(5.0)
    assert len(receiver.requests) == 3
    (letter,) = notifier.dead_letters(10)
    assert letter.attempts == 3
    assert letter.channel == "webhook"
    assert letter.target == receiver.url
    assert letter.device_id == "truck-7"
    assert "503" in letter.error


async def test_webhook_client_error_not_retried(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    receiver.fail_first = 100
    receiver.fail_status = 400
    notifier = await notifiers([make_rule(webhook_url=receiver.url)], max_attempts=5)
    notifier.submit(batch_of(make_event()))
    assert await notifier.drain(5.0)
    assert len(receiver.requests) == 1
    (letter,) = notifier.dead_letters(10)
    assert letter.attempts == 1


async def test_webhook_rate_limit_retried(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    receiver.fail_first = 1
    receiver.fail_status = 429
    notifier = await notifiers([make_rule(webhook_url=receiver.url)])
    notifier.submit(batch_of(make_event()))
    await receiver.wait_for(2)
    assert await notifier.drain(5.0)
    assert notifier.dead_letters(10) == []


async def test_webhook_refused_connection_dead_lettered(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    url = receiver.url
    await receiver.close()
    notifier = await notifiers([make_rule(webhook_url=url)], max_attempts=2)
    notifier.submit(batch_of(make_event()))
    assert await notifier.drain(5.0)
    (letter,) = notifier.dead_letters(10)
    assert letter.attempts == 2
    assert "ConnectError" in letter.error


async def test_webhook_failure_keeps_other_rules(
    receiver: HttpReceiver, notifiers: Callable[..., Any]
) -> None:
    broken = make_rule(id="broken", webhook_url="http://127.0.0.1:1/hook")
    working = make_rule(id="working", webhook_url=receiver.url)
    notifier = await notifiers([broken, working], max_attempts=2)
    notifier.submit(batch_of(make_event()))
    await receiver.wait_for(1)
    assert await notifier.drain(5.0)
    assert [letter.rule_id for letter in notifier.dead_letters(10)] == ["broken"]
    assert json.loads(receiver.requests[0].body)["rule_id"] == "working"


def test_redact_url_hides_credentials_and_query() -> None:
    from fleetpulse.notify.webhook import redact_url

    redacted = redact_url("http://user:PASSINURL@127.0.0.1:18948/x?token=QTOKEN")
    assert "PASSINURL" not in redacted
    assert "QTOKEN" not in redacted
    assert "user" not in redacted
    assert redacted == "http://***@127.0.0.1:18948/x?***"


def test_redact_url_keeps_plain_url() -> None:
    from fleetpulse.notify.webhook import redact_url

    assert redact_url("https://hooks.example.test/fleet") == "https://hooks.example.test/fleet"
