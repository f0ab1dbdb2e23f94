"""The partner portal on the SQLite backend: an organization's portal origins and portal
sessions (minted, exchanged once, looked up by cookie, ended, purged), mixed into
`SQLiteStore` as `PortalMethods`.

The exchange is one `UPDATE … WHERE cookie_hash IS NULL … RETURNING`: SQLite runs one writer
at a time, so of two exchanges of one link exactly one finds it unused.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

import orjson

from dispatcher.core.portal import PortalSession
from dispatcher.store import schema
from dispatcher.store.sqlite.encoding import dt, us
from dispatcher.store.sqlite.transactions import Runner

# The minting key must still be live: revoking it ends its sessions and kills its links.
_KEY_LIVE = (
    "EXISTS (SELECT 1 FROM api_keys k WHERE k.id = portal_sessions.key_id AND k.revoked_at IS NULL)"
)


class PortalMethods:
    """The portal calls of `Store`, mixed into `SQLiteStore`."""

    async def set_portal_origins(
        self, org_id: str, origins: Sequence[str], *, now: datetime
    ) -> bool:
        changed = await cast(Runner, self)._change(
            "UPDATE organizations SET portal_origins = ?, updated_at = ? WHERE id = ?",
            (orjson.dumps(list(origins)).decode(), us(now), org_id),
        )
        return changed == 1

    async def create_portal_session(self, session: PortalSession, token_hash: str) -> None:
        await cast(Runner, self)._change(
            """
            INSERT INTO portal_sessions (id, organization_id, key_id, scopes, token_hash,
                created_at, link_expires_at, expires_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """,
            (
                session.id,
                session.organization_id,
                session.key_id,
                schema.dump_scopes(session.scopes),
                token_hash,
                us(session.created_at),
                us(session.link_expires_at),
                us(session.expires_at),
            ),
        )

    async def exchange_portal_link(
        self, token_hash: str, cookie_hash: str, *, now: datetime
    ) -> PortalSession | None:
        at = us(now)
        rows = await cast(Runner, self)._write(
            lambda conn: conn.execute(
                f"""
                UPDATE portal_sessions SET cookie_hash = ?, exchanged_at = ?
                WHERE token_hash = ? AND cookie_hash IS NULL AND link_expires_at > ?
                    AND expires_at > ? AND {_KEY_LIVE}
                RETURNING *
                """,  # noqa: S608 - a constant fragment, no input
                (cookie_hash, at, token_hash, at, at),
            ).fetchall()  # drained before COMMIT
        )
        return schema.portal_session_from_row(rows[0], dt) if rows else None

    async def portal_session_by_link(self, token_hash: str) -> PortalSession | None:
        row = await cast(Runner, self)._one(
            "SELECT * FROM portal_sessions WHERE token_hash = ?", (token_hash,)
        )
        return None if row is None else schema.portal_session_from_row(row, dt)

    async def portal_session_by_cookie(self, cookie_hash: str) -> PortalSession | None:
        row = await cast(Runner, self)._one(
            f"SELECT * FROM portal_sessions WHERE cookie_hash = ? AND {_KEY_LIVE}",  # noqa: S608
            (cookie_hash,),
        )
        return None if row is None else schema.portal_session_from_row(row, dt)

    async def end_portal_session(self, session_id: str) -> bool:
        changed = await cast(Runner, self)._change(
            "DELETE FROM portal_sessions WHERE id = ?", (session_id,)
        )
        return changed == 1

    async def purge_portal_sessions(self, *, now: datetime) -> int:
        at = us(now)
        return await cast(Runner, self)._change(
            "DELETE FROM portal_sessions WHERE expires_at <= ? "
            "OR (cookie_hash IS NULL AND link_expires_at <= ?)",
            (at, at),
        )
