"""OsmAnd over HTTP, as Traccar Client and the OsmAnd app send it (``[osmand]`` settings)."""

from fleetpulse.ingest.protocols.osmand.listener import OsmandListener

__all__ = ["OsmandListener"]
