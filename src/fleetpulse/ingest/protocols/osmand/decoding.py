"""Decode the OsmAnd parameters that Traccar Client and the OsmAnd app send into a RecordIn.

One request carries one position. Parameters (all optional except the id):

- ``id`` or ``deviceid``: the device id.
- ``timestamp``: epoch seconds (below 2147483647), epoch milliseconds, ISO-8601, or
  ``yyyy-MM-dd HH:mm:ss``. A time without an offset is UTC. Missing: the time of receipt.
- ``lat`` and ``lon``, or ``location=lat,lon``, in degrees.
- ``speed`` in the configured unit (knots by default), ``bearing`` or ``heading`` in
  degrees, ``altitude`` and ``accuracy`` in metres.
- ``batt``: the phone's battery in percent, kept as the attribute ``battery_pct``.
- ``valid``: ``true`` or ``1`` marks a valid fix, anything else an invalid one.
- any other parameter: an attribute, as a number, a boolean or a string, except
  parameters named like a credential (``token``, ``password``, ``key`` and the other
  names of ``auth.redact.SECRET_PARAMETERS``, in any case), which are dropped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import parse_qsl

from fleetpulse.auth.redact import is_secret_parameter
from fleetpulse.errors import FleetpulseError
from fleetpulse.model.record import RecordIn
from fleetpulse.model.vocabulary import INVALID_TYPE, MISSING_FIELD, TOO_LARGE, TS_INVALID

# Timestamps below this are seconds and above it milliseconds, as Traccar decides: the
# largest signed 32-bit value, which as seconds is the year 2038.
MAX_EPOCH_S: Final = 2_147_483_647
# Traccar Client sends about 12 parameters; 200 leaves room for custom ones and bounds work.
MAX_PARAMETERS: Final = 200
KMH_PER_UNIT: Final = {"knots": 1.852, "kmh": 1.0, "mps": 3.6}
ATTRIBUTE_BATTERY_PCT: Final = "battery_pct"

_NUMBER: Final = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER: Final = re.compile(r"[+-]?\d{1,18}")
_NON_FINITE_WORDS: Final = frozenset(
    sign + word for sign in ("", "+", "-") for word in ("nan", "inf", "infinity")
)
_LOCAL_TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"
_ID_KEYS: Final = ("id", "deviceid")
# Parameters mapped to RecordIn fields; every other parameter becomes an attribute.
_MAPPED_KEYS: Final = frozenset(
    {
        *_ID_KEYS,
        "timestamp",
        "lat",
        "lon",
        "location",
        "speed",
        "bearing",
        "heading",
        "altitude",
        "accuracy",
        "batt",
        "valid",
    }
)


class OsmandRequestError(FleetpulseError):
    """A request that cannot become a record. ``reason`` is a reject reason code.

    ``device_id`` is set when the request named one, so the dead letter carries it.
    """

    def __init__(self, reason: str, detail: str, device_id: str | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.device_id = device_id


def parse_parameters(text: str) -> dict[str, str]:
    """Split a query string or form body into parameters; the last of repeated names wins.

    Raises OsmandRequestError (``too_large``) past ``MAX_PARAMETERS`` parameters.
    """
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_PARAMETERS)
    except ValueError as exc:
        raise OsmandRequestError(
            TOO_LARGE, f"the request has more than {MAX_PARAMETERS} parameters"
        ) from exc
    return dict(pairs)


def decode_parameters(params: Mapping[str, str], received_at_ms: int, speed_unit: str) -> RecordIn:
    """Build the RecordIn of one OsmAnd request; ``speed_unit`` is a key of KMH_PER_UNIT.

    Raises OsmandRequestError when the id or the position is missing or a value is not
    of its type. Ranges are left to ``validate_record``.
    """
    device_id = next((params[key] for key in _ID_KEYS if params.get(key)), None)
    if device_id is None:
        raise OsmandRequestError(
            MISSING_FIELD,
            "the request has no id or deviceid parameter; set the device identifier in the client",
        )
    try:
        return _build_record(device_id, params, received_at_ms, speed_unit)
    except OsmandRequestError as exc:
        exc.device_id = device_id
        raise


def _build_record(
    device_id: str, params: Mapping[str, str], received_at_ms: int, speed_unit: str
) -> RecordIn:
    lat, lon = _position(params)
    timestamp = params.get("timestamp")
    ts_ms = received_at_ms if timestamp is None else parse_timestamp_ms(timestamp)

    speed_kmh = _optional_number(params, "speed")
    if speed_kmh is not None:
        speed_kmh *= KMH_PER_UNIT[speed_unit]
    heading = params.get("bearing", params.get("heading"))
    heading_key = "bearing" if "bearing" in params else "heading"
    valid = params.get("valid")

    attributes = _attributes(params)
    return RecordIn(
        device_id=device_id,
        ts=ts_ms,
        lat=lat,
        lon=lon,
        speed_kmh=speed_kmh,
        heading_deg=None if heading is None else parse_number(heading_key, heading),
        altitude_m=_optional_number(params, "altitude"),
        accuracy_m=_optional_number(params, "accuracy"),
        valid=None if valid is None else valid.lower() in ("true", "1"),
        attributes=attributes or None,
    )


def _position(params: Mapping[str, str]) -> tuple[float, float]:
    location = params.get("location")
    if location is not None and "lat" not in params:
        parts = location.split(",")
        if len(parts) != 2:
            raise OsmandRequestError(
                INVALID_TYPE,
                f"location {_quote(location)} is not of the form lat,lon (for example 60.0,30.0)",
            )
        return parse_number("location latitude", parts[0]), parse_number(
            "location longitude", parts[1]
        )

    missing = [key for key in ("lat", "lon") if key not in params]
    if missing:
        raise OsmandRequestError(
            MISSING_FIELD,
            f"the request has no {' or '.join(missing)} parameter; send lat and lon, "
            "or location=lat,lon",
        )
    return parse_number("lat", params["lat"]), parse_number("lon", params["lon"])


def _optional_number(params: Mapping[str, str], key: str) -> float | None:
    value = params.get(key)
    return None if value is None else parse_number(key, value)


def parse_number(name: str, value: str) -> float:
    """Parse a decimal number; NaN and infinity pass so that validation names them.

    Raises OsmandRequestError (``invalid_type``) for anything else.
    """
    text = value.strip()
    if _NUMBER.fullmatch(text) or text.lower() in _NON_FINITE_WORDS:
        return float(text)
    raise OsmandRequestError(INVALID_TYPE, f"{name} {_quote(value)} is not a number")


def parse_timestamp_ms(value: str) -> int:
    """Parse an OsmAnd timestamp into epoch milliseconds (see the module docstring).

    Raises OsmandRequestError (``ts_invalid``) for a value of none of the accepted forms.
    """
    text = value.strip()
    if _NUMBER.fullmatch(text):
        number = float(text)
        if not math.isfinite(number):
            raise OsmandRequestError(TS_INVALID, f"timestamp {_quote(value)} is out of range")
        return int(number * 1000) if abs(number) < MAX_EPOCH_S else int(number)

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = datetime.strptime(text, _LOCAL_TIME_FORMAT)
        except ValueError:
            raise OsmandRequestError(
                TS_INVALID,
                f"timestamp {_quote(value)} is not epoch seconds, epoch milliseconds, "
                "ISO-8601 or yyyy-MM-dd HH:mm:ss",
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return math.floor(moment.timestamp() * 1000)


def _attributes(params: Mapping[str, str]) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    battery = params.get("batt")
    if battery is not None:
        attributes[ATTRIBUTE_BATTERY_PCT] = parse_number("batt", battery)
    for key, value in params.items():
        if key not in _MAPPED_KEYS and not is_secret_parameter(key):
            attributes[key] = attribute_value(value)
    return attributes


def attribute_value(value: str) -> int | float | bool | str:
    """Type an attribute the way Traccar does: a finite number, true or false, else the string."""
    text = value.strip()
    if _INTEGER.fullmatch(text):
        return int(text)
    if _NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    if text in ("true", "false"):
        return text == "true"
    return value


def _quote(value: str) -> str:
    # Cut long values so that a reject detail stays one readable line.
    return repr(value if len(value) <= 40 else value[:40] + "...")
