"""Decode one MQTT message: the JSON forms of ``POST /v1/telemetry``, one object or an array.

When a record lacks ``device_id``, the device id level of the topic fills it in. A
``device_id`` in the payload wins over the topic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from fleetpulse.ingest.decode import BodyError, decode_body
from fleetpulse.model.validate import Reject, ValidatedBatch
from fleetpulse.model.vocabulary import SOURCE_MQTT

if TYPE_CHECKING:
    from fleetpulse.config import Settings

_CONTENT_TYPE: Final = "application/json"
_DEVICE_ID_KEY: Final = b'"device_id"'
_ENCODER: Final = msgspec.json.Encoder()


def decode_message(
    payload: bytes, topic_device_id: str | None, received_at_ms: int, settings: Settings
) -> ValidatedBatch:
    """Validate the records of one message payload; never raises for bad input.

    A payload that is not usable as a whole (not JSON, not an object or array, too large)
    becomes one Reject at index 0 with the payload as raw bytes.
    """
    # An oversized payload is left for decode_body to reject before anything parses it.
    if topic_device_id is not None and len(payload) <= settings.ingest.max_body_bytes:
        payload = _fill_device_id(payload, topic_device_id)
    try:
        return decode_body(payload, _CONTENT_TYPE, received_at_ms, settings, SOURCE_MQTT)
    except BodyError as exc:
        raw = payload[: settings.ingest.dead_letter_raw_bytes]
        return ValidatedBatch([], [Reject(0, exc.reason, exc.message, raw, topic_device_id)])


def _fill_device_id(payload: bytes, device_id: str) -> bytes:
    """Add ``device_id`` to each record object that lacks it; other payloads pass unchanged."""
    stripped = payload.lstrip()
    # Fast path: one object that names its device needs no parsing here.
    if stripped.startswith(b"{") and _DEVICE_ID_KEY in payload:
        return payload
    try:
        document: Any = msgspec.json.decode(payload)
    except (msgspec.DecodeError, RecursionError):
        # decode_body rejects the same payload with its reason (invalid JSON, or nested
        # too deep), so the message becomes a dead letter and is acknowledged.
        return payload

    if isinstance(document, dict):
        if "device_id" in document:
            return payload
        document["device_id"] = device_id
        return _ENCODER.encode(document)
    if isinstance(document, list):
        changed = False
        for element in document:
            if isinstance(element, dict) and "device_id" not in element:
                element["device_id"] = device_id
                changed = True
        return _ENCODER.encode(document) if changed else payload
    return payload
