"""MQTT: records taken from a broker subscription (``[mqtt]`` settings)."""

from fleetpulse.ingest.protocols.mqtt.listener import MqttListener

__all__ = ["MqttListener"]
