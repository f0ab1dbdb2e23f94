"""The PostgreSQL connections under `PostgresStore`: `PooledConnections`, which opens and
closes the asyncpg pool (`async with`, sessions set up for short OLTP statements) and lends
every operation a pooled connection through `_run`, which maps what goes wrong to the
store's errors: connection failures and refusals become StoreUnavailableError, a deadlock
or serialization failure is retried a few times first, an integrity violation becomes
IntegrityViolationError; plus the tables of asyncpg errors behind that mapping.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

import asyncpg
from asyncpg import Record

from dispatcher.errors import IntegrityViolationError, StoreUnavailableError

if TYPE_CHECKING:
    from dispatcher.store.postgres.connection import Conn

T = TypeVar("T")

_ATTEMPTS = 3  # tries of a transaction that lost a deadlock or serialization race

# Errors meaning "the database cannot serve us now", not "the query is wrong".
_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,  # class 08, incl. a connection lost mid-query
    asyncpg.InsufficientResourcesError,  # class 53: disk full, too many connections
    asyncpg.OperatorInterventionError,  # class 57: shutdown, cannot connect now, cancel
)
_RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
# ...and, mid-transaction, the client-side errors of a connection the server dropped.
_BROKEN: tuple[type[BaseException], ...] = (
    *_UNAVAILABLE,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
# At connect time any server refusal (bad password, no such database) is "unavailable" too.
_CANNOT_CONNECT: tuple[type[BaseException], ...] = (*_UNAVAILABLE, asyncpg.PostgresError)


# Short OLTP statements only: JIT compilation costs far more than it saves (a claim that
# runs in 1 ms was measured taking 280 ms to JIT once its cost estimate crossed the limit).
_SESSION_SETTINGS = {"jit": "off", "application_name": "layers-webhooks"}


async def _keep_session(conn: object) -> None:
    """The pool's reset between uses. The store sets no session state (no session SET, cursors,
    LISTEN or session advisory locks), and asyncpg rolls back an abandoned transaction
    itself, so the default reset query would be a wasted round trip per operation."""


class PooledConnections:
    """An asyncpg pool, open inside `async with`, whose connections `_run` lends out. Its
    error messages name the database by the subclass's `repr` (never the password)."""

    def __init__(
        self, url: str, *, pool_size: int, connect_timeout: float, command_timeout: float
    ) -> None:
        self._url = url
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool[Record] | None = None

    async def __aenter__(self) -> Self:
        try:
            self._pool = await asyncpg.create_pool(
                self._url,
                min_size=1,
                max_size=self._pool_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
                server_settings=_SESSION_SETTINGS,
                reset=_keep_session,
            )
        except _CANNOT_CONNECT as exc:
            raise StoreUnavailableError(f"cannot connect to {self!r}: {exc}") from exc
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    # -- running statements ---------------------------------------------------------------

    async def _run(self, work: Callable[[Conn], Awaitable[T]], *, transaction: bool = False) -> T:
        """Run `work` on a pooled connection (in a transaction if asked), retrying lost
        deadlock races and mapping infrastructure faults to StoreUnavailableError."""
        if self._pool is None:
            raise RuntimeError("the store is not open: use `async with store:`")
        pool = self._pool
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                # Taking a connection may open a new one: any server refusal then (a database
                # closed to connections, a restart in progress) means "unavailable".
                conn = await pool.acquire()
            except _CANNOT_CONNECT as exc:
                raise StoreUnavailableError(f"{self!r}: {exc}") from exc
            try:
                if not transaction:
                    return await work(conn)
                async with conn.transaction():
                    return await work(conn)
            except _RETRYABLE as exc:
                if attempt == _ATTEMPTS:
                    raise StoreUnavailableError(f"{self!r}: {exc}") from exc
            except _BROKEN as exc:
                # The server went away under the transaction: an outage, and the connection
                # is unfit to reuse (the pool's no-op reset would hand it to the next caller).
                with contextlib.suppress(asyncpg.InterfaceError):  # already detached
                    conn.terminate()
                raise StoreUnavailableError(f"{self!r}: {exc}") from exc
            except asyncpg.IntegrityConstraintViolationError as exc:
                raise IntegrityViolationError(f"integrity violation: {exc}") from exc
            finally:
                await pool.release(conn)
        raise AssertionError("unreachable")
