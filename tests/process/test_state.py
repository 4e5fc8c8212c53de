from __future__ import annotations

import msgspec
import pytest

from fleetpulse.process.batch import process_records
from fleetpulse.process.state import STATE_VERSION, VehicleState, decode_state, encode_state
from tests.process.timeline import DEVICE, at, drive_east, make_settings


def test_state_round_trip() -> None:
    states: dict[str, VehicleState] = {}
    process_records(
        states, drive_east(0, 60, 40.0, ignition=True, dtc=["P0301"]), make_settings(), at(70)
    )
    state = states[DEVICE]
    assert decode_state(encode_state(state)) == state


def test_state_other_version_rejected() -> None:
    data = encode_state(VehicleState(device_id=DEVICE, version=STATE_VERSION + 1))
    with pytest.raises(msgspec.DecodeError, match="version"):
        decode_state(data)


def test_state_garbage_rejected() -> None:
    with pytest.raises(msgspec.DecodeError):
        decode_state(b"\xc1not msgpack")
