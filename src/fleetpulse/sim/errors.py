"""Errors of the simulator, the sender and the trace readers.

FleetpulseError
└── SimError                  root of this package's errors
    ├── ServerUnreachableError  no TCP connection to the ingest URL: start the server
    ├── DeliveryError           a batch was still unsent when its retry time ran out
    ├── AuthenticationError     the server rejected the token (or its absence)
    └── TraceError              a trace file cannot be read (file and line in the message)
"""

from fleetpulse.errors import FleetpulseError


class SimError(FleetpulseError):
    """Root of the errors raised by ``fleetpulse.sim``."""


class ServerUnreachableError(SimError):
    """The ingest server did not accept a TCP connection."""

    def __init__(self, url: str, cause: str) -> None:
        super().__init__(
            f"cannot connect to {url} ({cause}): is `fleetpulse run` started, "
            "and does --url point at it?"
        )
        self.url = url


class DeliveryError(SimError):
    """A batch could not be delivered before ``give_up_after_s`` ran out.

    Raised instead of dropping the batch, so a run never ends with records silently lost.
    """

    retriable = True

    def __init__(self, url: str, records: int, waited_s: float, last_error: str) -> None:
        super().__init__(
            f"gave up sending a batch of {records} records to {url} after {waited_s:.0f} s "
            f"of retries (last error: {last_error}). Check the server's health and logs"
        )
        self.records = records


class AuthenticationError(SimError):
    """A 401 or 403 response to a batch: the token is missing, invalid or of too narrow a scope."""

    def __init__(self, url: str, status: int, env_name: str) -> None:
        problem = "requires a token" if status == 401 else "refused the token"
        super().__init__(
            f"{url} {problem} (HTTP {status}): set {env_name} to an admin key or to a "
            "device token that lists every sending device (`fleetpulse keys create --help`)"
        )
        self.status = status


class TraceError(SimError):
    """A trace file is missing, of an unknown format, or contains an invalid value."""
