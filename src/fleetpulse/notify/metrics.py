"""Prometheus counter of notifications, in the registry served at ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import Counter

from fleetpulse.metrics import REGISTRY

NOTIFICATIONS = Counter(
    "fleetpulse_notifications",
    "Notifications by channel (webhook, email; '-' before a channel is chosen) and outcome: "
    "sent, dead_lettered, throttled, dropped (notify queue full).",
    ["channel", "outcome"],
    registry=REGISTRY,
)
