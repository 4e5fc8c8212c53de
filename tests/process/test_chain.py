from __future__ import annotations

import logging
from typing import Any

import pytest

from fleetpulse.config import Geofence, Settings
from fleetpulse.errors import ConfigError
from fleetpulse.model.vocabulary import IDLING, IGNITION_ON
from fleetpulse.process.batch import process_records
from fleetpulse.process.chain import Chain, Detector, build_chain
from fleetpulse.process.sample import Sample
from tests.process.timeline import HOME_LAT, HOME_LON, at, make_settings, record


def names(chain: Chain) -> list[str]:
    return [detector.name for detector in chain.detectors]


def test_chain_order() -> None:
    fence = Geofence(id="depot", lat=HOME_LAT, lon=HOME_LON, radius_m=50.0)
    chain = build_chain(make_settings(geofences=[fence]))
    assert [step.name for step in chain.steps] == ["odometer", "motion"]
    assert names(chain)[0] == "gps_jump"
    assert names(chain)[-1] == "trip"
    assert "geofence" in names(chain)


def test_chain_disabled_left_out() -> None:
    chain = build_chain(make_settings(disabled=["idling", "harsh"]))
    assert "idling" not in names(chain)
    assert "harsh" not in names(chain)
    assert "overspeed" in names(chain)


def test_chain_disabled_detector_silent() -> None:
    settings = make_settings(disabled=["idling"], idle_after_s=60.0)
    timeline = [record(t, ignition=True) for t in range(0, 600, 30)]
    batch = process_records({}, timeline, settings, at(600))
    assert IDLING not in [event.type for event in batch.events]


def test_chain_unknown_disabled_rejected() -> None:
    with pytest.raises(ConfigError, match="idle"):
        build_chain(make_settings(disabled=["idle"]))


def test_chain_geofence_left_out_without_fences() -> None:
    assert "geofence" not in names(build_chain(make_settings()))


def explode(state: Any, sample: Sample, settings: Settings) -> tuple[Any, tuple[()]]:
    raise ValueError("detector bug")


def test_chain_failing_detector_logged(caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings()
    real = build_chain(settings)
    broken = Chain(real.steps, (Detector("broken", None, explode), *real.detectors))
    timeline = [record(0, ignition=False), record(1, ignition=True)]
    with caplog.at_level(logging.ERROR, logger="fleetpulse.process.chain"):
        batch = process_records({}, timeline, settings, at(5), chain=broken)
    assert [event.type for event in batch.events] == [IGNITION_ON]
    assert len(batch.records) == 2
    assert "detector=broken" in caplog.text
