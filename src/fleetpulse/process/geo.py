"""Geometry for GPS fixes: great-circle distance and geofence membership.

Coordinates are WGS 84 degrees. Distances treat the Earth as a sphere, which is within
about 0.5 % of the ellipsoid: good enough for odometry and fences, not for surveying.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from fleetpulse.config import Geofence

# Mean Earth radius (IUGG), the usual constant for haversine distances.
EARTH_RADIUS_M = 6_371_008.8

# Metres per degree of latitude on that sphere.
METRES_PER_DEGREE = math.pi * EARTH_RADIUS_M / 180.0


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance between two points, in metres."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2.0
    half_dlambda = math.radians(lon2 - lon1) / 2.0
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    # Rounding can push a hair above 1 for antipodal points, outside asin's domain. A
    # conditional expression costs less than a call of min() on this hot path.
    return 2.0 * EARTH_RADIUS_M * math.asin(math.sqrt(a if a < 1.0 else 1.0))


def point_in_polygon(lat: float, lon: float, polygon: Sequence[tuple[float, float]]) -> bool:
    """Return whether a point is inside a polygon of (lat, lon) vertices, by the even-odd rule.

    Edges are straight lines in degrees, which is accurate for fences up to tens of
    kilometres. A polygon that crosses the antimeridian is not supported.
    """
    inside = False
    count = len(polygon)
    j = count - 1
    for i in range(count):
        lat_i, lon_i = polygon[i]
        lat_j, lon_j = polygon[j]
        # Count crossings of a ray from the point towards increasing longitude.
        if (lat_i > lat) != (lat_j > lat):
            crossing_lon = lon_i + (lat - lat_i) * (lon_j - lon_i) / (lat_j - lat_i)
            if lon < crossing_lon:
                inside = not inside
        j = i
    return inside


@dataclass(frozen=True, slots=True)
class Area:
    """A geofence prepared for fast tests: its bounding box first, then the exact shape.

    A circle has ``center`` and ``radius_m``, and a polygon has ``polygon``.
    """

    id: str
    min_lat: float
    max_lat: float
    min_lon: float
    max_lon: float
    center: tuple[float, float] | None = None
    radius_m: float = 0.0
    polygon: tuple[tuple[float, float], ...] = ()

    def contains(self, lat: float, lon: float) -> bool:
        """Return whether a point is inside the fence, counting a circle's edge as inside."""
        if not (self.min_lat <= lat <= self.max_lat and self.min_lon <= lon <= self.max_lon):
            return False
        if self.center is not None:
            return haversine_m(self.center[0], self.center[1], lat, lon) <= self.radius_m
        return point_in_polygon(lat, lon, self.polygon)


def compile_geofences(geofences: Sequence[Geofence]) -> tuple[Area, ...]:
    """Prepare configured geofences for ``Area.contains``, in configuration order."""
    return tuple(_compile(fence) for fence in geofences)


def _compile(fence: Geofence) -> Area:
    if fence.polygon is not None:
        lats = [lat for lat, _ in fence.polygon]
        lons = [lon for _, lon in fence.polygon]
        return Area(
            id=fence.id,
            min_lat=min(lats),
            max_lat=max(lats),
            min_lon=min(lons),
            max_lon=max(lons),
            polygon=tuple(fence.polygon),
        )

    # config.load_settings accepts a fence without a polygon only if it has all three.
    assert fence.lat is not None
    assert fence.lon is not None
    assert fence.radius_m is not None
    dlat = fence.radius_m / METRES_PER_DEGREE
    # The widest longitude of a spherical circle is asin(sin(r / R) / cos(lat)). When that
    # ratio reaches 1 the circle contains a pole, so the box spans all longitudes.
    cos_lat = math.cos(math.radians(fence.lat))
    ratio = math.sin(fence.radius_m / EARTH_RADIUS_M) / cos_lat if cos_lat > 0.0 else 2.0
    dlon = 360.0 if ratio >= 1.0 else math.degrees(math.asin(ratio))
    return Area(
        id=fence.id,
        min_lat=fence.lat - dlat,
        max_lat=fence.lat + dlat,
        min_lon=fence.lon - dlon,
        max_lon=fence.lon + dlon,
        center=(fence.lat, fence.lon),
        radius_m=fence.radius_m,
    )
