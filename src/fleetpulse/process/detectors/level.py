"""The state shared by threshold detectors with hysteresis (low fuel, low battery, overheat)."""

from __future__ import annotations

import msgspec


class LevelState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """Whether the condition is active. It re-arms only after the recovery threshold."""

    active: bool = False


# The only two states, shared so a transition allocates nothing.
ACTIVE_FALSE = LevelState(active=False)
ACTIVE_TRUE = LevelState(active=True)
