"""The asyncio engine: consumer, intake, scheduler, poller, recorder, housekeeping, replay.

It executes what `dispatcher.core` decides, over the store (`dispatcher.store`) and the
delivery client (`dispatcher.engine.delivery`).
"""
