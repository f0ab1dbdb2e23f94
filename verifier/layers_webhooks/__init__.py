"""Layers Webhooks verifier."""
