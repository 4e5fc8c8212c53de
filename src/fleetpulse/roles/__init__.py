"""The three roles of a fleetpulse deployment, each one a piece that can run alone.

- ``IngestRole`` (``roles/ingest.py``): the telemetry HTTP routes and the device
  protocol listeners. It publishes records to the queue and writes dead letters.
- ``ProcessRole`` (``roles/process.py``): the processor and the notifier. It consumes
  the queue, writes to the store and publishes each stored batch on the live bus.
- ``ApiRole`` (``roles/api.py``): the query API, the dashboard, the live WebSocket fed
  by the live bus, and retention.

``EmbeddedServer`` (``server.py``) composes all three in one process on one HTTP port.
``RoleServer`` (``roles/standalone.py``) runs one role in its own process with its own
port, as ``fleetpulse ingest``, ``fleetpulse process`` and ``fleetpulse api`` do.
"""

from fleetpulse.roles.api import ApiRole
from fleetpulse.roles.ingest import IngestRole
from fleetpulse.roles.process import ProcessRole

__all__ = ["ApiRole", "IngestRole", "ProcessRole"]
