"""A synthetic road network around a city centre, in the local frame (metres).

The layout: a square street grid with arterials every few blocks, two diagonal arterials
through the centre, and a ring highway joined to the grid by four access roads. Traffic
lights stand where arterials cross. No map data is needed, and every vehicle shares one
read-only network.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

BLOCK_M = 500.0
# Grid lines per side: 13 lines 500 m apart span 6 km with the centre on a line.
GRID_LINES = 13
ARTERIAL_EVERY = 3
RING_RADIUS_M = 5000.0
# 72 ring nodes make 5-degree bends, which the route builder treats as straight.
RING_NODES = 72

STREET_KMH = 50.0
ARTERIAL_KMH = 60.0
DIAGONAL_KMH = 70.0
ACCESS_KMH = 80.0
# Below the server's default overspeed limit of 120 km/h, so only injected episodes exceed it.
RING_KMH = 100.0

# Expected wait at a traffic light, added to a lit node's cost when choosing a route.
LIGHT_PENALTY_S = 15.0


@dataclass(frozen=True, slots=True)
class Road:
    """A one-way edge of the network to node ``to``."""

    to: int
    length_m: float
    limit_kmh: float
    highway: bool


@dataclass(frozen=True, slots=True)
class Ramp:
    """An access road between the grid node ``grid_node`` and the ring node ``ring_index``."""

    grid_node: int
    ring_index: int


@dataclass(slots=True)
class RoadNetwork:
    """Nodes (positions in metres), lights, adjacency lists, the ring and its ramps."""

    xy: list[tuple[float, float]] = field(default_factory=list)
    lit: list[bool] = field(default_factory=list)
    roads: list[list[Road]] = field(default_factory=list)
    grid_nodes: list[int] = field(default_factory=list)
    # Ring node ids counter-clockwise from east: ring index k is at 360 * k / RING_NODES deg.
    ring: list[int] = field(default_factory=list)
    ramps: list[Ramp] = field(default_factory=list)

    def add_node(self, x_m: float, y_m: float, lit: bool = False) -> int:
        self.xy.append((x_m, y_m))
        self.lit.append(lit)
        self.roads.append([])
        return len(self.xy) - 1

    def connect(self, a: int, b: int, limit_kmh: float, highway: bool = False) -> None:
        """Add a two-way road between nodes ``a`` and ``b``."""
        (xa, ya), (xb, yb) = self.xy[a], self.xy[b]
        length_m = math.hypot(xb - xa, yb - ya)
        self.roads[a].append(Road(b, length_m, limit_kmh, highway))
        self.roads[b].append(Road(a, length_m, limit_kmh, highway))

    def shortest_path(self, start: int, goal: int) -> list[int]:
        """Return the quickest node path from ``start`` to ``goal`` (both included).

        The cost is the travel time at the speed limit plus LIGHT_PENALTY_S per light.
        """
        best_s = {start: 0.0}
        previous: dict[int, int] = {}
        heap = [(0.0, start)]
        while heap:
            cost_s, node = heapq.heappop(heap)
            if node == goal:
                break
            if cost_s > best_s[node]:
                continue
            for road in self.roads[node]:
                step_s = road.length_m / (road.limit_kmh / 3.6)
                if self.lit[road.to]:
                    step_s += LIGHT_PENALTY_S
                candidate_s = cost_s + step_s
                if candidate_s < best_s.get(road.to, math.inf):
                    best_s[road.to] = candidate_s
                    previous[road.to] = node
                    heapq.heappush(heap, (candidate_s, road.to))
        if goal not in best_s:
            raise ValueError(f"node {goal} cannot be reached from node {start}")

        path = [goal]
        while path[-1] != start:
            path.append(previous[path[-1]])
        path.reverse()
        return path

    def road_between(self, a: int, b: int) -> Road:
        """Return the road from ``a`` to ``b``. Raises KeyError if they are not neighbours."""
        for road in self.roads[a]:
            if road.to == b:
                return road
        raise KeyError(f"no road from node {a} to node {b}")


def build_network() -> RoadNetwork:
    """Build the grid, the diagonals, the ring highway and its four access roads."""
    network = RoadNetwork()
    grid = _add_grid(network)
    _add_diagonals(network, grid)
    _add_ring(network, grid)
    return network


def _is_arterial(line: int) -> bool:
    return line % ARTERIAL_EVERY == 0


def _add_grid(network: RoadNetwork) -> list[list[int]]:
    half_m = BLOCK_M * (GRID_LINES - 1) / 2
    centre = GRID_LINES // 2
    grid: list[list[int]] = []
    for i in range(GRID_LINES):
        column = []
        for j in range(GRID_LINES):
            on_diagonal = i == j or i + j == GRID_LINES - 1
            crossing = _is_arterial(i) and _is_arterial(j)
            lit = crossing or (on_diagonal and (_is_arterial(i) or _is_arterial(j)))
            # The centre is a roundabout of the diagonals and arterials: no light.
            lit = lit and not (i == centre and j == centre)
            node = network.add_node(-half_m + i * BLOCK_M, -half_m + j * BLOCK_M, lit)
            column.append(node)
            network.grid_nodes.append(node)
        grid.append(column)

    for i in range(GRID_LINES):
        for j in range(GRID_LINES - 1):
            # Street (i, j)-(i, j+1) runs north along vertical line i, and so on.
            network.connect(grid[i][j], grid[i][j + 1], _line_limit(i))
            network.connect(grid[j][i], grid[j + 1][i], _line_limit(i))
    return grid


def _line_limit(line: int) -> float:
    return ARTERIAL_KMH if _is_arterial(line) else STREET_KMH


def _add_diagonals(network: RoadNetwork, grid: list[list[int]]) -> None:
    last = GRID_LINES - 1
    for i in range(last):
        network.connect(grid[i][i], grid[i + 1][i + 1], DIAGONAL_KMH)
        network.connect(grid[i][last - i], grid[i + 1][last - i - 1], DIAGONAL_KMH)


def _add_ring(network: RoadNetwork, grid: list[list[int]]) -> None:
    for k in range(RING_NODES):
        angle = 2 * math.pi * k / RING_NODES
        network.ring.append(
            network.add_node(RING_RADIUS_M * math.cos(angle), RING_RADIUS_M * math.sin(angle))
        )
    for k in range(RING_NODES):
        network.connect(network.ring[k], network.ring[(k + 1) % RING_NODES], RING_KMH, True)

    middle = GRID_LINES // 2
    last = GRID_LINES - 1
    quarter = RING_NODES // 4
    # East, north, west and south edge midpoints of the grid, facing ring indexes 0, 1/4...
    for quadrant, (i, j) in enumerate(((last, middle), (middle, last), (0, middle), (middle, 0))):
        ring_index = quadrant * quarter
        network.connect(grid[i][j], network.ring[ring_index], ACCESS_KMH)
        network.ramps.append(Ramp(grid[i][j], ring_index))
