"""Layers Webhooks dispatcher: Kafka events to signed, retried, deduplicated deliveries."""

__version__ = "0.1.0"
