"""The pure core: domain values and every decision, with no I/O.

Nothing here opens a socket or a file handle to the network, waits, sleeps, reads the clock or
draws randomness: time and entropy are parameters (`dispatcher.clock` supplies them to the
layers above). `make lint` enforces this with an import-linter contract (pyproject.toml).
"""
