"""Errors of the reports package."""

from fleetpulse.errors import FleetpulseError


class InvalidPeriodError(FleetpulseError, ValueError):
    """A report period is invalid: unknown time zone, end before start, too long, or day
    boundaries that are not whole UTC hours. The message names the value and the fix."""
