"""Raw frame logging behind a settings switch, throttled so a busy device cannot flood the log."""

from __future__ import annotations

import logging
import time
from typing import Final

# Enough lines to follow one device while debugging; more would drown the log.
MAX_FRAMES_PER_S: Final = 10
# A frame is cut to this many bytes before hex encoding, so one line stays readable.
MAX_FRAME_BYTES: Final = 512


class FrameLog:
    """Logs raw frames as hex at info level, at most ``max_per_s`` lines per second.

    Does nothing unless ``enabled`` (the ``log_frames`` setting of a protocol). Frames
    over the limit are counted and the count is logged with the next line that passes.
    """

    def __init__(
        self, logger: logging.Logger, enabled: bool, max_per_s: int = MAX_FRAMES_PER_S
    ) -> None:
        self._log = logger
        self.enabled = enabled
        self._max_per_s = max_per_s
        self._window_start_s = 0.0
        self._in_window = 0
        self._dropped = 0

    def frame(self, direction: str, peer: str, data: bytes) -> None:
        """Log ``data`` received from or sent to ``peer``; ``direction`` is "in" or "out"."""
        if not self.enabled:
            return
        now_s = time.monotonic()
        if now_s - self._window_start_s >= 1.0:
            self._window_start_s = now_s
            self._in_window = 0
        if self._in_window >= self._max_per_s:
            self._dropped += 1
            return
        self._in_window += 1
        self._log.info(
            "frame %s peer=%s bytes=%d dropped_since_last=%d hex=%s",
            direction,
            peer,
            len(data),
            self._dropped,
            data[:MAX_FRAME_BYTES].hex(),
        )
        self._dropped = 0
