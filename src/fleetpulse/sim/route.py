"""Routes: a trip through the road network as a polyline with speed limits and caps.

A route is travelled by distance ``s`` from its start. Each segment has a speed limit,
and each node a cap for the turn it makes: the highest speed at which a vehicle may
take it (math.inf when the route goes straight on, zero at the destination).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from fleetpulse.sim.geo import compass_deg
from fleetpulse.sim.network import RING_NODES, RoadNetwork

# Lateral acceleration drivers accept in a turn, where v = sqrt(a * radius).
LATERAL_MPS2 = 2.0
# Radius of a right-angle turn between 50 km/h streets. It grows with the square of the
# faster road's limit, so a highway ramp is taken at about 40 km/h.
TURN_RADIUS_90_M = 15.0
# Bends below this angle (the ring's 5-degree kinks, for example) need no slowing.
STRAIGHT_BELOW_DEG = 10.0
MIN_TURN_KMH = 10.0
# City trips shorter than this are not worth starting the engine for.
MIN_TRIP_M = 1000.0


@dataclass(slots=True)
class Route:
    """A polyline in the local frame, with a limit per segment and a cap per node (m/s)."""

    x_m: list[float]
    y_m: list[float]
    cum_m: list[float]
    limit_ms: list[float]
    highway: list[bool]
    heading_deg: list[float]
    cap_ms: list[float]
    lit: list[bool]

    @property
    def length_m(self) -> float:
        return self.cum_m[-1]

    @property
    def has_highway(self) -> bool:
        return any(self.highway)

    def segment_at(self, s_m: float, hint: int = 0) -> int:
        """Return the index of the segment containing ``s_m``, searching forward from ``hint``."""
        segment = hint
        last = len(self.limit_ms) - 1
        while segment < last and s_m >= self.cum_m[segment + 1]:
            segment += 1
        return segment

    def position(self, s_m: float, segment: int) -> tuple[float, float]:
        """Return the (x, y) in metres at distance ``s_m`` on ``segment``."""
        start_m = self.cum_m[segment]
        length_m = self.cum_m[segment + 1] - start_m
        fraction = 0.0 if length_m <= 0 else min(1.0, (s_m - start_m) / length_m)
        x = self.x_m[segment] + fraction * (self.x_m[segment + 1] - self.x_m[segment])
        y = self.y_m[segment] + fraction * (self.y_m[segment + 1] - self.y_m[segment])
        return x, y

    def highway_end_m(self, segment: int) -> float:
        """Return where the highway stretch containing ``segment`` ends, as a distance."""
        end = segment
        while end < len(self.highway) and self.highway[end]:
            end += 1
        return self.cum_m[end]


def build_route(network: RoadNetwork, nodes: list[int], speed_factor: float) -> Route:
    """Turn a node path into a Route, with limits scaled by the driver's ``speed_factor``."""
    path = [node for i, node in enumerate(nodes) if i == 0 or node != nodes[i - 1]]
    if len(path) < 2:
        raise ValueError(f"a route needs two distinct nodes, got {nodes}")

    x_m = [network.xy[node][0] for node in path]
    y_m = [network.xy[node][1] for node in path]
    cum_m = [0.0]
    limits_kmh: list[float] = []
    highway: list[bool] = []
    heading: list[float] = []
    for a, b in zip(path, path[1:], strict=False):
        road = network.road_between(a, b)
        cum_m.append(cum_m[-1] + road.length_m)
        limits_kmh.append(road.limit_kmh)
        highway.append(road.highway)
        (xa, ya), (xb, yb) = network.xy[a], network.xy[b]
        heading.append(compass_deg(xb - xa, yb - ya))

    caps = [math.inf]
    for i in range(1, len(path) - 1):
        turn_kmh = _turn_cap_kmh(heading[i - 1], heading[i], limits_kmh[i - 1], limits_kmh[i])
        caps.append(turn_kmh / 3.6)
    caps.append(0.0)

    return Route(
        x_m=x_m,
        y_m=y_m,
        cum_m=cum_m,
        limit_ms=[limit * speed_factor / 3.6 for limit in limits_kmh],
        highway=highway,
        heading_deg=heading,
        cap_ms=caps,
        lit=[i not in (0, len(path) - 1) and network.lit[node] for i, node in enumerate(path)],
    )


def _turn_cap_kmh(
    heading_in: float, heading_out: float, limit_in: float, limit_out: float
) -> float:
    angle = abs((heading_out - heading_in + 180.0) % 360.0 - 180.0)
    if angle < STRAIGHT_BELOW_DEG:
        return math.inf
    radius_90_m = TURN_RADIUS_90_M * (max(limit_in, limit_out) / 50.0) ** 2
    radius_m = radius_90_m * 90.0 / angle
    return max(MIN_TURN_KMH, math.sqrt(LATERAL_MPS2 * radius_m) * 3.6)


def plan_city_trip(network: RoadNetwork, start: int, rng: random.Random) -> list[int]:
    """Return the node path of a trip to a random grid node at least MIN_TRIP_M away."""
    destination = _pick_destination(network, start, rng)
    return network.shortest_path(start, destination)


def plan_highway_trip(network: RoadNetwork, start: int, rng: random.Random) -> list[int]:
    """Return the node path of a trip that drives one or two quarters of the ring.

    The vehicle takes the ramp nearest to ``start``, follows the ring in a random
    direction, leaves by a later ramp and ends at a random grid node.
    """
    sx, sy = network.xy[start]
    entry = min(
        range(len(network.ramps)),
        key=lambda k: math.dist((sx, sy), network.xy[network.ramps[k].grid_node]),
    )
    direction = rng.choice((1, -1))
    quarters = rng.choice((1, 2))
    exit_ = (entry + direction * quarters) % len(network.ramps)
    entry_ramp = network.ramps[entry]
    exit_ramp = network.ramps[exit_]

    to_ramp = network.shortest_path(start, entry_ramp.grid_node)
    steps = quarters * RING_NODES // 4
    ring_path = [
        network.ring[(entry_ramp.ring_index + direction * k) % RING_NODES] for k in range(steps + 1)
    ]
    destination = _pick_destination(network, exit_ramp.grid_node, rng)
    from_ramp = network.shortest_path(exit_ramp.grid_node, destination)
    return to_ramp + ring_path + from_ramp


def _pick_destination(network: RoadNetwork, start: int, rng: random.Random) -> int:
    candidates = [
        node
        for node in network.grid_nodes
        if math.dist(network.xy[node], network.xy[start]) >= MIN_TRIP_M
    ]
    return rng.choice(candidates)
