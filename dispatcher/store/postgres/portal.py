"""The partner portal on PostgreSQL: an organization's portal origins and portal sessions
(minted, exchanged once, looked up by cookie, ended, purged), mixed into `PostgresStore` as
`PortalMethods`.

The exchange is one `UPDATE … WHERE cookie_hash IS NULL … RETURNING`: of two concurrent
exchanges of one link, the second waits on the first's row lock, then re-checks the row
(READ COMMITTED re-evaluates the WHERE clause on the updated row) and finds it used.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import orjson

from dispatcher.core.portal import PortalSession
from dispatcher.store import schema
from dispatcher.store.postgres.connection import count, same

if TYPE_CHECKING:
    from dispatcher.store.postgres.connection import Conn

T = TypeVar("T")

# The minting key must still be live: revoking it ends its sessions and kills its links.
_KEY_LIVE = (
    "EXISTS (SELECT 1 FROM api_keys k WHERE k.id = portal_sessions.key_id AND k.revoked_at IS NULL)"
)


class _Runs(Protocol):
    async def _run(
        self, work: Callable[[Conn], Awaitable[T]], *, transaction: bool = False
    ) -> T: ...


def _session(row: Any) -> PortalSession | None:
    return None if row is None else schema.portal_session_from_row(row, same)


class PortalMethods:
    """The portal calls of `Store`, mixed into `PostgresStore`."""

    async def set_portal_origins(
        self, org_id: str, origins: Sequence[str], *, now: datetime
    ) -> bool:
        async def work(conn: Conn) -> int:
            return count(
                await conn.execute(
                    "UPDATE organizations SET portal_origins = $1::jsonb, updated_at = $2 "
                    "WHERE id = $3",
                    orjson.dumps(list(origins)).decode(),
                    now,
                    org_id,
                )
            )

        return await cast(_Runs, self)._run(work) == 1

    async def create_portal_session(self, session: PortalSession, token_hash: str) -> None:
        async def work(conn: Conn) -> None:
            await conn.execute(
                """
                INSERT INTO portal_sessions (id, organization_id, key_id, scopes, token_hash,
                    created_at, link_expires_at, expires_at)
                VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8)
                """,
                session.id,
                session.organization_id,
                session.key_id,
                schema.dump_scopes(session.scopes),
                token_hash,
                session.created_at,
                session.link_expires_at,
                session.expires_at,
            )

        await cast(_Runs, self)._run(work)

    async def exchange_portal_link(
        self, token_hash: str, cookie_hash: str, *, now: datetime
    ) -> PortalSession | None:
        async def work(conn: Conn) -> Any:
            return await conn.fetchrow(
                f"""
                UPDATE portal_sessions SET cookie_hash = $1, exchanged_at = $2
                WHERE token_hash = $3 AND cookie_hash IS NULL AND link_expires_at > $2
                    AND expires_at > $2 AND {_KEY_LIVE}
                RETURNING *
                """,  # noqa: S608 - a constant fragment, no input
                cookie_hash,
                now,
                token_hash,
            )

        return _session(await cast(_Runs, self)._run(work))

    async def portal_session_by_link(self, token_hash: str) -> PortalSession | None:
        async def work(conn: Conn) -> Any:
            return await conn.fetchrow(
                "SELECT * FROM portal_sessions WHERE token_hash = $1", token_hash
            )

        return _session(await cast(_Runs, self)._run(work))

    async def portal_session_by_cookie(self, cookie_hash: str) -> PortalSession | None:
        async def work(conn: Conn) -> Any:
            return await conn.fetchrow(
                f"SELECT * FROM portal_sessions WHERE cookie_hash = $1 AND {_KEY_LIVE}",  # noqa: S608
                cookie_hash,
            )

        return _session(await cast(_Runs, self)._run(work))

    async def end_portal_session(self, session_id: str) -> bool:
        async def work(conn: Conn) -> int:
            return count(
                await conn.execute("DELETE FROM portal_sessions WHERE id = $1", session_id)
            )

        return await cast(_Runs, self)._run(work) == 1

    async def purge_portal_sessions(self, *, now: datetime) -> int:
        async def work(conn: Conn) -> int:
            return count(
                await conn.execute(
                    "DELETE FROM portal_sessions WHERE expires_at <= $1 "
                    "OR (cookie_hash IS NULL AND link_expires_at <= $1)",
                    now,
                )
            )

        return await cast(_Runs, self)._run(work)
