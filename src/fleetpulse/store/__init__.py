"""The store of records, events, trips, vehicle state and dead letters."""

from fleetpulse.store.base import ProcessedBatch, Store, VehicleSnapshot, open_store

__all__ = ["ProcessedBatch", "Store", "VehicleSnapshot", "open_store"]
