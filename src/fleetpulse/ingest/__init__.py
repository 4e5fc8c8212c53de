"""Ingest: decode and validate incoming telemetry, publish it to the queue.

``IngestService`` is transport-neutral; ``telemetry_routes`` exposes it as
``POST /v1/telemetry``.
"""

from fleetpulse.ingest.http import telemetry_routes
from fleetpulse.ingest.service import IngestRequestError, IngestResult, IngestService, RecordError

__all__ = ["IngestRequestError", "IngestResult", "IngestService", "RecordError", "telemetry_routes"]
