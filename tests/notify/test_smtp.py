from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from tests.notify.conftest import batch_of, make_event, make_rule
from tests.notify.receivers import SmtpReceiver

SENDER = "fleetpulse@example.org"
RECIPIENTS = ["ops@example.org", "night@example.org"]


def smtp_settings(receiver: SmtpReceiver, **fields: Any) -> dict[str, Any]:
    return {"smtp_host": "127.0.0.1", "smtp_port": receiver.port, "smtp_from": SENDER, **fields}


async def test_email_delivered(smtp_receiver: SmtpReceiver, notifiers: Callable[..., Any]) -> None:
    rule = make_rule(email_to=RECIPIENTS)
    notifier = await notifiers([rule], **smtp_settings(smtp_receiver))
    notifier.submit(batch_of(make_event(speed_kmh=131.0)))
    await smtp_receiver.wait_for(1)

    (message,) = smtp_receiver.handler.messages
    assert message["From"] == SENDER
    assert message["To"] == ", ".join(RECIPIENTS)
    assert "overspeed" in message["Subject"]
    assert "truck-7" in message["Subject"]
    assert "speed_kmh: 131.0" in message.get_payload()
    assert sorted(smtp_receiver.handler.envelopes[0].rcpt_tos) == sorted(RECIPIENTS)


async def test_email_temporary_failure_retried(
    smtp_receiver: SmtpReceiver, notifiers: Callable[..., Any]
) -> None:
    smtp_receiver.handler.fail_first = 2
    notifier = await notifiers([make_rule(email_to=RECIPIENTS)], **smtp_settings(smtp_receiver))
    notifier.submit(batch_of(make_event()))
    await smtp_receiver.wait_for(1)
    assert await notifier.drain(5.0)
    assert smtp_receiver.handler.attempts == 3
    assert notifier.dead_letters(10) == []


async def test_email_permanent_failure_dead_lettered(
    smtp_receiver: SmtpReceiver, notifiers: Callable[..., Any]
) -> None:
    smtp_receiver.handler.fail_first = 100
    smtp_receiver.handler.fail_reply = "554 5.7.1 rejected"
    notifier = await notifiers([make_rule(email_to=RECIPIENTS)], **smtp_settings(smtp_receiver))
    notifier.submit(batch_of(make_event()))
    assert await notifier.drain(5.0)
    assert smtp_receiver.handler.attempts == 1
    (letter,) = notifier.dead_letters(10)
    assert letter.channel == "email"
    assert "554" in letter.error


async def test_email_login_password_not_logged(
    notifiers: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    password = "pa55-w0rd-never-logged"
    receiver = SmtpReceiver(login=("fleet", password))
    await receiver.start()
    try:
        caplog.set_level(logging.DEBUG)
        settings = smtp_settings(receiver, smtp_username="fleet", smtp_password=password)
        notifier = await notifiers([make_rule(email_to=RECIPIENTS)], **settings)
        notifier.submit(batch_of(make_event()))
        await receiver.wait_for(1)
    finally:
        await receiver.close()
    assert receiver.logins == ["fleet"]
    assert password not in caplog.text


async def test_email_wrong_password_dead_lettered(
    notifiers: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    receiver = SmtpReceiver(login=("fleet", "right"))
    await receiver.start()
    try:
        caplog.set_level(logging.DEBUG)
        settings = smtp_settings(receiver, smtp_username="fleet", smtp_password="wrong-secret")
        notifier = await notifiers([make_rule(email_to=RECIPIENTS)], **settings)
        notifier.submit(batch_of(make_event()))
        assert await notifier.drain(5.0)
    finally:
        await receiver.close()
    (letter,) = notifier.dead_letters(10)
    assert letter.attempts == 1
    assert "535" in letter.error
    assert "wrong-secret" not in caplog.text
    assert "wrong-secret" not in letter.error
