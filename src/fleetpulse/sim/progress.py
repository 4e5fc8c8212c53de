"""Progress of a run: a snapshot for callbacks and a one-line display for terminals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TextIO

from fleetpulse.sim.sender import SendStats


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot of a run. ``done_s`` and ``total_s`` are in device-time seconds."""

    records_sent: int
    accepted: int
    rejected: int
    retries: int
    elapsed_s: float
    done_s: float
    total_s: float

    @property
    def rate_rps(self) -> float:
        """Records sent per wall-clock second since the start, counting server responses."""
        return self.records_sent / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @classmethod
    def of(cls, stats: SendStats, elapsed_s: float, done_s: float, total_s: float) -> Progress:
        return cls(
            records_sent=stats.records_sent,
            accepted=stats.accepted,
            rejected=stats.rejected,
            retries=stats.retries,
            elapsed_s=elapsed_s,
            done_s=done_s,
            total_s=total_s,
        )


def format_progress(progress: Progress) -> str:
    """Return the one-line display, for example
    ``sent 12,000  accepted 11,880  rejected 120  retries 0  2,400 rec/s  00:05:00/00:10:00``."""
    return (
        f"sent {progress.records_sent:,}  accepted {progress.accepted:,}  "
        f"rejected {progress.rejected:,}  retries {progress.retries:,}  "
        f"{progress.rate_rps:,.0f} rec/s  "
        f"{_clock(progress.done_s)}/{_clock(progress.total_s)}"
    )


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


class ProgressLine:
    """Writer of a one-line display that is rewritten in place, only if ``stream`` is a TTY."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self._written = False

    def update(self, progress: Progress) -> None:
        if not self.enabled:
            return
        # Carriage return, then erase to the end of the line (ANSI EL).
        self.stream.write("\r" + format_progress(progress) + "\x1b[K")
        self.stream.flush()
        self._written = True

    def close(self) -> None:
        if self._written:
            self.stream.write("\n")
            self.stream.flush()
            self._written = False
