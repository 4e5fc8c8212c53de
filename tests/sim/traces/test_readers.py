"""Trace readers on the real recorded traces in tests/data/traces and on small made-up files."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetpulse.sim import TraceError, read_trace
from fleetpulse.sim.traces import detect_format

TRACES = Path(__file__).parents[2] / "data" / "traces"
MUNICH_1HZ = TRACES / "barefoot_munich_x0001-001_1hz.json"
MUNICH_15S = TRACES / "barefoot_munich_x0001-015_15s.json"
ENVIROCAR = TRACES / "envirocar_track_5e61052477e02d42aa97fe9e_dodge_caliber_2020-03-05.geojson"
VISNJAN = TRACES / "gpxpy_around-visnjan-with-car.gpx"


def _ms(text: str) -> int:
    return round(datetime.fromisoformat(text).timestamp() * 1000)


@pytest.mark.parametrize(
    ("path", "count", "first", "last"),
    [
        (MUNICH_1HZ, 1194, "2014-09-10T06:54:07+02:00", "2014-09-10T07:14:02+02:00"),
        (MUNICH_15S, 80, "2014-09-10T06:54:07+02:00", "2014-09-10T07:13:52+02:00"),
        (ENVIROCAR, 334, "2020-03-05T13:22:06Z", "2020-03-05T13:50:07Z"),
        (VISNJAN, 104, "2020-12-18T06:15:50Z", "2020-12-18T06:24:24Z"),
    ],
)
def test_reader_counts_and_span(path: Path, count: int, first: str, last: str) -> None:
    points = read_trace(path)

    assert len(points) == count
    assert points[0].ts_ms == _ms(first)
    assert points[-1].ts_ms == _ms(last)
    assert all(a.ts_ms <= b.ts_ms for a, b in zip(points, points[1:], strict=False))


@pytest.mark.parametrize("path", [MUNICH_1HZ, MUNICH_15S, ENVIROCAR, VISNJAN])
def test_reader_positions_plausible(path: Path) -> None:
    for point in read_trace(path):
        assert 40.0 < point.lat < 55.0
        assert 8.0 < point.lon < 14.0


def test_barefoot_longitude_first() -> None:
    point = read_trace(MUNICH_1HZ)[0]

    assert point.lon == pytest.approx(11.564388282625075)
    assert point.lat == pytest.approx(48.16350662940509)


@pytest.mark.parametrize("path", [MUNICH_1HZ, MUNICH_15S, VISNJAN])
def test_reader_invents_no_speed(path: Path) -> None:
    assert all(point.speed_kmh is None for point in read_trace(path))


def test_envirocar_measurements() -> None:
    points = read_trace(ENVIROCAR)
    first = points[0]

    assert first.speed_kmh == pytest.approx(92.98336654128798)
    assert first.heading_deg == pytest.approx(213.1722909095297)
    assert first.altitude_m == pytest.approx(65.0)
    assert first.engine_rpm == pytest.approx(2419.99992787838)
    assert max(p.speed_kmh or 0.0 for p in points) == pytest.approx(130.6, abs=0.1)
    assert sum(1 for p in points if p.engine_rpm is None) == 1


def test_gpx_elevation() -> None:
    point = read_trace(VISNJAN)[0]

    assert point.altitude_m == pytest.approx(211.15)
    assert point.lat == pytest.approx(45.273518851)


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        (MUNICH_15S, "trace.json", "barefoot"),
        (ENVIROCAR, "trace.json", "geojson"),
        (VISNJAN, "trace.xml", "gpx"),
        (MUNICH_15S, "trace", "barefoot"),
    ],
)
def test_detect_format_by_content(tmp_path: Path, source: Path, name: str, expected: str) -> None:
    copy = tmp_path / name
    shutil.copy(source, copy)

    assert detect_format(copy) == expected


def test_csv_reader_header_variants(tmp_path: Path) -> None:
    path = tmp_path / "drive.csv"
    path.write_text(
        "Timestamp,Latitude,Lng,Speed,Course\n"
        "2024-05-01T08:00:00Z,48.1,11.5,30.5,90\n"
        "2024-05-01T08:00:01+00:00,48.1001,11.5002,,\n"
        "1714550402,48.1002,11.5004,31,91\n"
    )

    points = read_trace(path)

    assert [p.ts_ms for p in points] == [1714550400000, 1714550401000, 1714550402000]
    assert points[0].speed_kmh == 30.5
    assert points[0].heading_deg == 90.0
    assert points[1].speed_kmh is None
    assert points[2].lon == 11.5004


def test_csv_reader_bad_value_names_line(tmp_path: Path) -> None:
    path = tmp_path / "drive.csv"
    path.write_text("ts,lat,lon\n1714550400000,48.1,11.5\n1714550401000,north,11.5\n")

    with pytest.raises(TraceError, match=r"line 3: invalid lat 'north'"):
        read_trace(path)


def test_csv_reader_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "drive.csv"
    path.write_text("time,lat\n2024-05-01T08:00:00Z,48.1\n")

    with pytest.raises(TraceError, match="no lon or lng or longitude column"):
        read_trace(path)


def test_geojson_epoch_time_and_plain_properties(tmp_path: Path) -> None:
    path = tmp_path / "drive.geojson"
    path.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "geometry": {"type": "Point", "coordinates": [11.5, 48.1, 520]},'
        ' "properties": {"timestamp": 1714550400000, "speed_kmh": 12.5}},'
        '{"type": "Feature", "geometry": {"type": "LineString", "coordinates": []},'
        ' "properties": {}}]}'
    )

    points = read_trace(path)

    assert len(points) == 1
    assert points[0].ts_ms == 1714550400000
    assert points[0].speed_kmh == 12.5
    assert points[0].altitude_m == 520.0


def test_gpx_speed_extension_in_kmh(tmp_path: Path) -> None:
    path = tmp_path / "drive.gpx"
    path.write_text(
        '<gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg>'
        '<trkpt lat="48.1" lon="11.5"><time>2024-05-01T08:00:00Z</time>'
        "<extensions><speed>10</speed><course>45</course></extensions></trkpt>"
        '<trkpt lat="48.2" lon="11.6"></trkpt>'
        "</trkseg></trk></gpx>"
    )

    points = read_trace(path)

    assert len(points) == 1
    assert points[0].speed_kmh == pytest.approx(36.0)
    assert points[0].heading_deg == 45.0


def test_reader_sorts_out_of_order_points(tmp_path: Path) -> None:
    path = tmp_path / "drive.csv"
    path.write_text("ts,lat,lon\n1714550402000,48.2,11.5\n1714550400000,48.1,11.5\n")

    points = read_trace(path)

    assert [p.lat for p in points] == [48.1, 48.2]


def test_reader_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="file not found"):
        read_trace(tmp_path / "none.gpx")


def test_reader_no_timed_points(tmp_path: Path) -> None:
    path = tmp_path / "empty.gpx"
    path.write_text('<gpx><trk><trkseg><trkpt lat="1" lon="2"/></trkseg></trk></gpx>')

    with pytest.raises(TraceError, match="no points with a time"):
        read_trace(path)


def test_reader_time_without_offset_is_utc(tmp_path: Path) -> None:
    path = tmp_path / "drive.csv"
    path.write_text("time,lat,lon\n2024-05-01 08:00:00,48.1,11.5\n")

    expected = datetime(2024, 5, 1, 8, tzinfo=UTC)
    assert read_trace(path)[0].ts_ms == round(expected.timestamp() * 1000)
