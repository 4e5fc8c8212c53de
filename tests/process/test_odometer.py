from __future__ import annotations

from fleetpulse.model.vocabulary import FLAG_ODOMETER_GLITCH
from fleetpulse.process.odometer import ODOMETER_RESET_READINGS
from tests.process.timeline import make_settings, record, samples


def odometer_run(readings: list[float | None], step_s: int = 10) -> list:
    records = [record(i * step_s, odometer_m=value) for i, value in enumerate(readings)]
    return samples(records, make_settings())


def test_odometer_zero_between_readings() -> None:
    result = odometer_run([120_000.0, 120_100.0, 0.0, 120_300.0])
    assert FLAG_ODOMETER_GLITCH in result[2].enriched.flags
    assert result[2].odometer_m == 120_100.0
    assert FLAG_ODOMETER_GLITCH not in result[3].enriched.flags
    assert result[3].odometer_m == 120_300.0


def test_odometer_drop_flagged() -> None:
    result = odometer_run([50_000.0, 49_000.0, 50_050.0])
    assert FLAG_ODOMETER_GLITCH in result[1].enriched.flags
    assert result[1].odometer_m == 50_000.0
    assert result[2].odometer_m == 50_050.0


def test_odometer_spike_flagged() -> None:
    # 10 s at up to 300 km/h is under 1 km, so 900 km is a garbled read.
    result = odometer_run([50_000.0, 950_000.0, 50_200.0])
    assert FLAG_ODOMETER_GLITCH in result[1].enriched.flags
    assert result[1].odometer_m == 50_000.0
    assert FLAG_ODOMETER_GLITCH not in result[2].enriched.flags


def test_odometer_kilometre_steps_accepted() -> None:
    result = odometer_run([50_000.0, 51_000.0, 52_000.0], step_s=1)
    assert not any(FLAG_ODOMETER_GLITCH in s.enriched.flags for s in result)


def test_odometer_missing_keeps_last_good() -> None:
    result = odometer_run([50_000.0, None])
    assert result[1].odometer_m == 50_000.0
    assert result[1].enriched.flags == []


def test_odometer_reset_accepted() -> None:
    lower = [1_000.0 + 10.0 * i for i in range(ODOMETER_RESET_READINGS)]
    result = odometer_run([90_000.0, *lower])
    flagged = [FLAG_ODOMETER_GLITCH in s.enriched.flags for s in result]
    assert flagged == [False] + [True] * (ODOMETER_RESET_READINGS - 1) + [False]
    assert result[-1].odometer_m == lower[-1]


def test_odometer_zeros_never_reset() -> None:
    result = odometer_run([90_000.0] + [0.0] * (ODOMETER_RESET_READINGS + 2))
    assert result[-1].odometer_m == 90_000.0
    assert FLAG_ODOMETER_GLITCH in result[-1].enriched.flags
