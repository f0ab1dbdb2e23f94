"""Persistent state behind one interface (`Store`), with two backends chosen by URL scheme.

- `sqlite:///path/to/file.db` — `SQLiteStore`, the embedded default for one node. As in
  SQLAlchemy, everything after `sqlite:///` is the path: `sqlite:///data/wh.db` is relative
  to the working directory, `sqlite:////var/lib/wh.db` is absolute.
- `postgresql://…` or `postgres://…` — `PostgresStore`, for production and many replicas.

Both pass one contract suite (tests/dispatcher/store/contract.py).
"""

from __future__ import annotations

from dispatcher.errors import StoreUnavailableError
from dispatcher.setting_values import SQLITE_PREFIX, check_database_url
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
    check_database_url(url)
    if url.startswith(SQLITE_PREFIX):
        return SQLiteStore(url.removeprefix(SQLITE_PREFIX), secret_box=secret_box, clock=clock)
    return PostgresStore(url, secret_box=secret_box, clock=clock, pool_size=pool_size)
