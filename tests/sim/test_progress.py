"""The progress line shown on a terminal."""

from __future__ import annotations

import io

from fleetpulse.sim.progress import Progress, ProgressLine, format_progress

PROGRESS = Progress(
    records_sent=12_000,
    accepted=11_880,
    rejected=120,
    retries=3,
    elapsed_s=5.0,
    done_s=300.0,
    total_s=600.0,
)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_progress_fields() -> None:
    line = format_progress(PROGRESS)

    assert "sent 12,000" in line
    assert "accepted 11,880" in line
    assert "rejected 120" in line
    assert "retries 3" in line
    assert "2,400 rec/s" in line
    assert "00:05:00/00:10:00" in line


def test_progress_line_rewrites_in_place() -> None:
    stream = _Terminal()
    line = ProgressLine(stream)

    line.update(PROGRESS)
    line.update(PROGRESS)
    line.close()

    text = stream.getvalue()
    assert text.count("\r") == 2
    assert text.endswith("\n")


def test_progress_line_silent_when_not_terminal() -> None:
    stream = io.StringIO()
    line = ProgressLine(stream)

    line.update(PROGRESS)
    line.close()

    assert stream.getvalue() == ""
