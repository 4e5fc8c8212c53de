"""Topic patterns: the subscription filter, and the device id that a topic carries."""

from __future__ import annotations

from typing import Final

DEVICE_ID_PLACEHOLDER: Final = "{device_id}"


class TopicPattern:
    """A topic such as ``fleet/{device_id}/telemetry``; the placeholder is one topic level.

    A pattern without the placeholder subscribes to that exact topic (MQTT wildcards are
    allowed in it), and then every payload must name its device.
    """

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self._levels = pattern.split("/")
        self._device_level = next(
            (i for i, level in enumerate(self._levels) if level == DEVICE_ID_PLACEHOLDER), None
        )

    def subscription(self, shared_group: str = "") -> str:
        """Return the filter to subscribe to, as ``$share/<group>/<filter>`` if a group is set."""
        levels = ["+" if level == DEVICE_ID_PLACEHOLDER else level for level in self._levels]
        topic_filter = "/".join(levels)
        return f"$share/{shared_group}/{topic_filter}" if shared_group else topic_filter

    def device_id(self, topic: str) -> str | None:
        """Return the device id level of ``topic``, or None when the pattern has no placeholder
        or the topic has a different number of levels."""
        if self._device_level is None:
            return None
        levels = topic.split("/")
        if len(levels) != len(self._levels):
            return None
        return levels[self._device_level] or None
