"""Persistent state behind one interface (`Store`), with two backends chosen by URL scheme.

- `sqlite:///path/to/file.db` — `SQLiteStore`, the embedded default for one node. As in
  SQLAlchemy, everything after `sqlite:///` is the path: `sqlite:///data/wh.db` is relative
  to the working directory, `sqlite:////var/lib/wh.db` is absolute.
- `postgresql://…` or `postgres://…` — `PostgresStore`, for production and many replicas.

Both pass one contract suite (tests/dispatcher/store/contract.py).
"""

from __future__ import annotations

from dispatcher.errors import DatabaseUrlError, StoreUnavailableError
from dispatcher.store.base import Store
from dispatcher.store.postgres.store import PostgresStore
from dispatcher.store.records import (
    AttemptRecord,
    DeadLetterRecord,
    DeliveryRecord,
    EventRecord,
    IngestBatch,
    IngestResult,
    ReplayRecord,
)
from dispatcher.store.schema import Clock, system_clock
from dispatcher.store.secretbox import SecretBox
from dispatcher.store.sqlite.store import SQLiteStore

__all__ = [
    "AttemptRecord",
    "DeadLetterRecord",
    "DeliveryRecord",
    "EventRecord",
    "IngestBatch",
    "IngestResult",
    "PostgresStore",
    "ReplayRecord",
    "SQLiteStore",
    "Store",
    "StoreUnavailableError",
    "open_store",
]

_SQLITE_PREFIX = "sqlite:///"
_POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def open_store(
    url: str,
    *,
    secret_box: SecretBox,
    clock: Clock = system_clock,
    pool_size: int = 10,
) -> Store:
    """The store for `WEBHOOKS_DATABASE_URL`, not yet opened: use it as `async with`.

    `clock` stamps bookkeeping times (received_at, updated_at); `pool_size` is the number of
    PostgreSQL connections (SQLite always uses one). Raises DatabaseUrlError for a URL it
    cannot use; the message never repeats the URL, which may carry a password.
    """
    if url.startswith("sqlite:"):
        path = url.removeprefix(_SQLITE_PREFIX) if url.startswith(_SQLITE_PREFIX) else ""
        if not path or "?" in path or path == ":memory:":
            raise DatabaseUrlError(
                "a SQLite database URL names a file: sqlite:///relative/path.db or "
                "sqlite:////absolute/path.db (no in-memory databases, no query options)"
            )
        return SQLiteStore(path, secret_box=secret_box, clock=clock)
    if url.startswith(_POSTGRES_SCHEMES):
        return PostgresStore(url, secret_box=secret_box, clock=clock, pool_size=pool_size)
    scheme = url.partition("://")[0] if "://" in url else "(none)"
    raise DatabaseUrlError(
        f"unsupported database URL scheme {scheme!r}: use sqlite:///path/to/file.db or "
        "postgresql://user@host:port/database"
    )
