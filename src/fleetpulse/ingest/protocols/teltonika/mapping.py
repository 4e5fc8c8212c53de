"""Mapping AVL records to ``RecordIn``: the GPS element, then IO elements per device model.

The meaning of an IO element id depends on the device family, so each model has its
own table. Ids a table does not name are kept raw in ``attributes`` as ``io_<id>``
(variable-length values as hex), so nothing the device sent is lost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from fleetpulse.ingest.protocols.teltonika.decoding import AvlRecord
from fleetpulse.model.record import RecordIn

Convert = Callable[[int], Any]


def _flag(value: int) -> bool:
    return value != 0


def _milli(value: int) -> float:
    return value / 1000


def _tenth(value: int) -> float:
    return value / 10


def _signed16_tenth(value: int) -> float:
    return (value - 0x10000 if value >= 0x8000 else value) / 10


def _same(value: int) -> int:
    return value


def _float(value: int) -> float:
    return float(value)


# Targets that are RecordIn fields; any other target name is an attributes key.
_RECORD_FIELDS: Final = frozenset(
    {"ignition", "battery_v", "odometer_m", "fuel_pct", "engine_rpm", "coolant_c"}
)

# FMB family (FMB0xx, FMB1xx, FMB9xx). Ids, units and multipliers from the "Teltonika
# Data Sending Parameters ID" pages of wiki.teltonika-gps.com (FMB010, FMB910), and the
# CAN elements (85, 87, 89, 115) from the FMB150 "CAN I/O standard elements" table.
# External voltage (66) is the vehicle battery; internal battery voltage (67) goes to
# attributes. Speed 24 repeats the GPS element's speed.
FMB: Final[dict[int, tuple[str, Convert]]] = {
    239: ("ignition", _flag),
    240: ("movement", _flag),
    66: ("battery_v", _milli),
    67: ("internal_battery_v", _milli),
    16: ("odometer_m", _float),
    21: ("gsm_signal", _same),
    24: ("gnss_speed_kmh", _same),
    69: ("gnss_status", _same),
    181: ("pdop", _tenth),
    182: ("hdop", _tenth),
    85: ("engine_rpm", _float),
    87: ("can_odometer_m", _same),
    89: ("fuel_pct", _float),
    115: ("coolant_c", _signed16_tenth),
}

# NOTE: FMB640 and other families number several elements differently (for example
# GNSS status); add a table here before mapping their fields, until then use "raw".
MODELS: Final[dict[str, dict[int, tuple[str, Convert]]]] = {"fmb": FMB, "raw": {}}


def to_record_in(imei: str, avl: AvlRecord, table: dict[int, tuple[str, Convert]]) -> RecordIn:
    """Build the RecordIn of one AVL record. Ranges are checked later by ``validate_record``.

    A record without satellites has no fix: it is marked ``valid=False`` and carries no
    speed, heading or altitude, because the GPS element then repeats stale or zero values.
    """
    has_fix = avl.satellites > 0
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {
        "satellites": avl.satellites,
        "priority": avl.priority,
        "event_io": avl.event_io_id,
    }
    if avl.generation_type is not None:
        attributes["generation_type"] = avl.generation_type
    for element_id, value in avl.io.items():
        target = table.get(element_id)
        if isinstance(value, bytes):
            attributes[f"io_{element_id}"] = value.hex()
        elif target is None:
            attributes[f"io_{element_id}"] = value
        elif target[0] in _RECORD_FIELDS:
            fields[target[0]] = target[1](value)
        else:
            attributes[target[0]] = target[1](value)
    return RecordIn(
        device_id=imei,
        ts=avl.ts_ms,
        lat=avl.lat,
        lon=avl.lon,
        speed_kmh=float(avl.speed_kmh) if has_fix else None,
        heading_deg=float(avl.angle_deg) if has_fix else None,
        altitude_m=float(avl.altitude_m) if has_fix else None,
        valid=has_fix,
        attributes=attributes,
        **fields,
    )
