"""The SQLite backend's one connection: opening it (the minimum SQLite version, autocommit so
that transactions are explicit, rows by name, WAL, synchronous=NORMAL, a busy timeout and
foreign keys), the lock that lets processes sharing the file write one at a time, and telling
an error that means "the database cannot serve us" (busy, locked, read-only, I/O, corrupt,
full, cannot open…) from one that means "the query is wrong".
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from types import TracebackType

MIN_SQLITE_VERSION = (3, 37, 0)  # STRICT tables; RETURNING needs 3.35

# Primary result codes that mean "the database cannot serve us", not "the query is wrong".
UNAVAILABLE_CODES = frozenset(
    {
        5,  # SQLITE_BUSY: another process holds the lock past busy_timeout
        6,  # SQLITE_LOCKED
        7,  # SQLITE_NOMEM
        8,  # SQLITE_READONLY
        10,  # SQLITE_IOERR
        11,  # SQLITE_CORRUPT
        13,  # SQLITE_FULL
        14,  # SQLITE_CANTOPEN: e.g. the directory does not exist
        15,  # SQLITE_PROTOCOL
        26,  # SQLITE_NOTADB
    }
)


def connect(path: str, *, busy_timeout: float) -> sqlite3.Connection:
    """Open and configure the connection (on the worker thread that will own it)."""
    if sqlite3.sqlite_version_info < MIN_SQLITE_VERSION:
        raise RuntimeError(
            f"SQLite {sqlite3.sqlite_version} is too old; the store needs "
            f"{'.'.join(map(str, MIN_SQLITE_VERSION))} or newer"
        )
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


def unavailable(exc: sqlite3.Error) -> bool:
    """Whether the error means the database cannot serve us (StoreUnavailableError)."""
    code = getattr(exc, "sqlite_errorcode", None)  # None for the module's own checks
    return code is not None and code & 0xFF in UNAVAILABLE_CODES


class WriterLock:
    """Processes sharing the file (`serve --workers N`, a CLI beside the service) take turns
    to write through an flock on `<path>.lock`, held around each write transaction: a
    waiting writer is woken the moment the lock is free, where SQLite's own busy handler
    polls with sleeps of up to 100 ms. A separate file, because closing any descriptor of the
    database itself would drop SQLite's POSIX locks. Used on the store's worker thread
    (flock releases the GIL while it waits); a no-op for an in-memory database."""

    def __init__(self, path: str) -> None:
        self._path = None if path in ("", ":memory:") or path.startswith("file:") else path
        self._fd = -1

    def open(self) -> None:
        if self._path is not None and self._fd < 0:
            self._fd = os.open(f"{self._path}.lock", os.O_RDWR | os.O_CREAT, 0o600)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> None:
        self.open()  # at the first write
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
