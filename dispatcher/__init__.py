"""Layers Webhooks dispatcher."""
