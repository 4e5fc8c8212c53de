"""Notification content: the webhook's JSON body and the e-mail's subject and text."""

from __future__ import annotations

from email.message import EmailMessage
from typing import Any

import msgspec

from fleetpulse.api.render import iso_ms
from fleetpulse.model.event import Event

_encoder = msgspec.json.Encoder()


def event_body(rule_id: str, event: Event) -> bytes:
    """Encode the webhook body: the rule id and the event with an RFC 3339 ``ts``."""
    payload: dict[str, Any] = {
        "rule_id": rule_id,
        "event": {
            "device_id": event.device_id,
            "type": event.type,
            "severity": event.severity,
            "ts_ms": event.ts_ms,
            "ts": iso_ms(event.ts_ms),
            "details": event.details,
        },
    }
    return _encoder.encode(payload)


def event_email(rule_id: str, event: Event, sender: str, recipients: list[str]) -> EmailMessage:
    """Build the e-mail of one event, with the webhook body as its text for machines too."""
    message = EmailMessage()
    message["Subject"] = f"[fleetpulse] {event.severity}: {event.type} on {event.device_id}"
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    details = "\n".join(f"  {key}: {value}" for key, value in event.details.items())
    message.set_content(
        f"Vehicle: {event.device_id}\n"
        f"Event: {event.type}\n"
        f"Severity: {event.severity}\n"
        f"Time: {iso_ms(event.ts_ms)}\n"
        f"Rule: {rule_id}\n"
        f"Details:\n{details or '  none'}\n"
    )
    return message
