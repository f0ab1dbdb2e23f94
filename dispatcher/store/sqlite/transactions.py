"""How work reaches the SQLite connection: `Work` (a function the store's worker thread runs
with the connection), `transaction` (`BEGIN IMMEDIATE … COMMIT`, rolled back on any error),
the migrations' statement splitter and the migration run itself, and `Runner`, the worker
helpers of `SQLiteStore` (`_one`, `_all`, `_change`, `_change_many`, `_write`) that the
modules holding the bodies of its other methods (reads, endpoints, replays, scheduling) call
it back through.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

from dispatcher.store import schema

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]
Params = Sequence[Any] | dict[str, Any]


class Runner(Protocol):
    """What `SQLiteStore` offers the modules that hold its methods' bodies: each helper ships
    one statement (or one `Work`) to the worker thread."""

    async def _all(self, sql: str, params: Params = ()) -> list[sqlite3.Row]: ...

    async def _one(self, sql: str, params: Params = ()) -> sqlite3.Row | None: ...

    async def _change(self, sql: str, params: Params = ()) -> int: ...

    async def _change_many(self, sql: str, rows: Sequence[Params]) -> int: ...

    async def _write(self, work: Work[T]) -> T: ...


def statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (executescript would commit midway)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    leftover = [ln for ln in buffer.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise ValueError(f"migration ends with an incomplete statement: {leftover[0]!r}")


_NO_LOCK: AbstractContextManager[None] = contextlib.nullcontext()


def transaction(
    conn: sqlite3.Connection,
    work: Work[T],
    writer: AbstractContextManager[None] = _NO_LOCK,
) -> T:
    """`work` inside `BEGIN IMMEDIATE … COMMIT`, holding `writer` (connection.WriterLock:
    one writing process at a time) throughout."""
    with writer:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = work(conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return result


def migrate(conn: sqlite3.Connection, *, now: int) -> list[str]:
    """Apply the migrations not yet recorded in `schema_migrations`; return their versions."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version TEXT PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT"
    )
    done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
    applied = []
    for migration in schema.migrations("sqlite"):
        if migration.version not in done:
            for statement in statements(migration.sql):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (migration.version, now))
            applied.append(migration.version)
    return applied
