"""Conversions between WGS84 positions and a flat local frame in metres around a centre.

The simulated city spans about 12 km, where an equirectangular projection is accurate to
well under a metre, far below the GPS noise the simulator adds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Mean Earth radius (IUGG), the usual choice for haversine distances.
EARTH_RADIUS_M = 6_371_008.8


@dataclass(frozen=True, slots=True)
class LocalFrame:
    """A tangent plane at (``lat0``, ``lon0``): x grows east and y north, in metres."""

    lat0: float
    lon0: float

    @property
    def m_per_deg_lat(self) -> float:
        return EARTH_RADIUS_M * math.pi / 180.0

    @property
    def m_per_deg_lon(self) -> float:
        return self.m_per_deg_lat * math.cos(math.radians(self.lat0))

    def to_lat_lon(self, x_m: float, y_m: float) -> tuple[float, float]:
        """Return the (lat, lon) in degrees of a point of the frame."""
        return self.lat0 + y_m / self.m_per_deg_lat, self.lon0 + x_m / self.m_per_deg_lon

    def to_xy(self, lat: float, lon: float) -> tuple[float, float]:
        """Return the (x, y) in metres of a position."""
        return (lon - self.lon0) * self.m_per_deg_lon, (lat - self.lat0) * self.m_per_deg_lat


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Return the great-circle distance in metres between two positions."""
    phi1 = math.radians(lat1)
    phi2 = math.radians(lat2)
    dphi = phi2 - phi1
    dlambda = math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def compass_deg(dx_m: float, dy_m: float) -> float:
    """Return the compass heading of a displacement: 0 is north, 90 east, in [0, 360)."""
    return math.degrees(math.atan2(dx_m, dy_m)) % 360.0
