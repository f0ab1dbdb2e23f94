"""Fault injection for Layers Webhooks: `python -m chaos` proves "nothing lost" under faults.

Scenarios (chaos/scenarios.py) start the real service as a child process, publish a known
set of events, inject one fault each, and check — from the receivers' own logs (the
ledger, chaos/ledger.py) and the store — that every (event, endpoint) pair that could
arrive did, verified and byte-identical, and that the failing-by-design endpoints ended
exactly as specified.
"""
