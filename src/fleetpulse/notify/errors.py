"""Errors of notification delivery.

FleetpulseError         (fleetpulse.errors)
└── DeliveryError       a webhook or e-mail delivery failed. ``retriable`` is whether
                        another attempt can succeed
"""

from __future__ import annotations

from fleetpulse.errors import FleetpulseError


class DeliveryError(FleetpulseError):
    """One attempt to deliver a notification failed.

    ``retriable`` is True for faults that may pass (a timeout, a refused connection,
    HTTP 408, 425, 429 or 5xx, an SMTP 4xx reply) and False for ones that repeat (another
    HTTP status outside 2xx, an SMTP 5xx reply).
    """

    def __init__(self, message: str, retriable: bool) -> None:
        super().__init__(message)
        self.retriable = retriable
