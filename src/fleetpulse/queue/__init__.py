"""The message queue between ingest and processing: ``base`` defines it, backends implement it."""

from fleetpulse.queue.base import Delivery, Queue, open_queue

__all__ = ["Delivery", "Queue", "open_queue"]
