"""fleetpulse: a real-time vehicle telemetry pipeline.

Records flow device -> ingest -> queue -> process -> store -> api. Each stage is a
package of its own; ``docs/architecture.md`` walks through them in that order.
"""

__version__ = "0.1.0"
