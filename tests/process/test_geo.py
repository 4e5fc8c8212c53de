from __future__ import annotations

import pytest

from fleetpulse.config import Geofence
from fleetpulse.process.geo import (
    METRES_PER_DEGREE,
    compile_geofences,
    haversine_m,
    point_in_polygon,
)
from tests.process.timeline import HOME_LAT, HOME_LON, moved

SQUARE = [(0.0, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 0.0)]
# A U shape: the notch between the arms, around (0.5, 0.5), is outside.
U_SHAPE = [
    (0.0, 0.0),
    (0.0, 1.0),
    (1.0, 1.0),
    (1.0, 0.7),
    (0.3, 0.7),
    (0.3, 0.3),
    (1.0, 0.3),
    (1.0, 0.0),
]


def test_haversine_one_degree_latitude() -> None:
    assert haversine_m(10.0, 20.0, 11.0, 20.0) == pytest.approx(METRES_PER_DEGREE)


def test_haversine_same_point_is_zero() -> None:
    assert haversine_m(HOME_LAT, HOME_LON, HOME_LAT, HOME_LON) == 0.0


def test_haversine_symmetric() -> None:
    there = moved(HOME_LAT, HOME_LON, 300.0, -400.0)
    forward = haversine_m(HOME_LAT, HOME_LON, *there)
    backward = haversine_m(*there, HOME_LAT, HOME_LON)
    assert forward == pytest.approx(backward)
    assert forward == pytest.approx(500.0, rel=1e-3)


def test_haversine_antipodes() -> None:
    assert haversine_m(0.0, 0.0, 0.0, 180.0) == pytest.approx(METRES_PER_DEGREE * 180.0)


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [(0.5, 0.5, True), (1.5, 0.5, False), (0.5, -0.1, False), (0.99, 0.01, True)],
)
def test_polygon_square(lat: float, lon: float, inside: bool) -> None:
    assert point_in_polygon(lat, lon, SQUARE) is inside


@pytest.mark.parametrize(
    ("lat", "lon", "inside"),
    [(0.5, 0.5, False), (0.15, 0.5, True), (0.5, 0.15, True), (0.85, 0.85, True)],
)
def test_polygon_concave(lat: float, lon: float, inside: bool) -> None:
    assert point_in_polygon(lat, lon, U_SHAPE) is inside


def test_circle_area_radius() -> None:
    fence = Geofence(id="depot", lat=HOME_LAT, lon=HOME_LON, radius_m=100.0)
    (area,) = compile_geofences([fence])
    assert area.contains(*moved(HOME_LAT, HOME_LON, 0.0, 99.0))
    assert not area.contains(*moved(HOME_LAT, HOME_LON, 0.0, 101.0))
    assert area.contains(*moved(HOME_LAT, HOME_LON, -70.0, -70.0))


def test_circle_area_bbox_keeps_far_north_edge() -> None:
    # At 70 degrees north the circle's widest longitude lies poleward of its centre.
    fence = Geofence(id="north", lat=70.0, lon=25.0, radius_m=5000.0)
    (area,) = compile_geofences([fence])
    edge = moved(70.0, 25.0, 0.0, 4990.0)
    assert area.contains(*edge)


def test_polygon_area() -> None:
    fence = Geofence(id="yard", polygon=SQUARE)
    (area,) = compile_geofences([fence])
    assert area.contains(0.5, 0.5)
    assert not area.contains(2.0, 0.5)
