"""Matching of server events to the simulator's truth entries.

An event matches a truth entry of the same vehicle whose window, from ``start_ms -
tolerance_ms`` to ``end_ms + tolerance_ms``, contains the event's ``ts_ms``. Each event
and each truth entry is used at most once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Window:
    """A truth entry reduced to what matching needs: vehicle and device-time span (ms)."""

    device_id: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Occurrence:
    """Something the server reported: vehicle and device time (ms)."""

    device_id: str
    ts_ms: int


@dataclass(slots=True)
class Matching:
    """Pairs of (occurrence index, window index), and the indexes left unmatched."""

    pairs: list[tuple[int, int]] = field(default_factory=list)
    unmatched_occurrences: list[int] = field(default_factory=list)
    unmatched_windows: list[int] = field(default_factory=list)


def match(
    occurrences: Sequence[Occurrence], windows: Sequence[Window], tolerance_ms: int
) -> Matching:
    """Pair occurrences with windows that contain them, each used once, as many as possible.

    Per vehicle, occurrences are taken in time order and each takes the free window
    containing it that closes first. For points and intervals this greedy choice finds
    a largest matching, because a window that closes later can serve later points.
    """
    by_device: defaultdict[str, list[int]] = defaultdict(list)
    for index, window in enumerate(windows):
        by_device[window.device_id].append(index)

    result = Matching()
    used: set[int] = set()
    order = sorted(range(len(occurrences)), key=lambda i: occurrences[i].ts_ms)
    for index in order:
        occurrence = occurrences[index]
        best: int | None = None
        best_close_ms = 0
        for candidate in by_device.get(occurrence.device_id, ()):
            if candidate in used:
                continue
            window = windows[candidate]
            close_ms = window.end_ms + tolerance_ms
            inside = window.start_ms - tolerance_ms <= occurrence.ts_ms <= close_ms
            if inside and (best is None or close_ms < best_close_ms):
                best, best_close_ms = candidate, close_ms
        if best is None:
            result.unmatched_occurrences.append(index)
        else:
            used.add(best)
            result.pairs.append((index, best))

    result.unmatched_windows = [i for i in range(len(windows)) if i not in used]
    return result
