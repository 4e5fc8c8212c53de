"""Errors of the Teltonika framer and decoder."""

from __future__ import annotations

from fleetpulse.errors import FleetpulseError


class FrameError(FleetpulseError):
    """Bytes from a device that do not form a valid handshake or AVL packet.

    ``problem`` is a short stable code (``bad_preamble``, ``crc_mismatch``, ...) for logs
    and tests; the message says what was found and what was expected. Sending the same
    bytes again fails the same way, so the error is not retriable.
    """

    def __init__(self, problem: str, message: str) -> None:
        super().__init__(message)
        self.problem = problem
        self.message = message
