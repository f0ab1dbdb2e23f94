"""The partner portal's part of the Store protocol (dispatcher.store.base.Store includes it):
one-time links, cookie sessions and the origins allowed to frame an organization's portal."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from dispatcher.core.portal import PortalSession


class PortalStore(Protocol):
    async def set_portal_origins(
        self, org_id: str, origins: Sequence[str], *, now: datetime
    ) -> bool:
        """Replace the origins allowed to frame an organization's portal; False when the
        organization does not exist."""
        ...

    async def create_portal_session(self, session: PortalSession, token_hash: str) -> None:
        """Store a minted session by the hash of its one-time link token."""
        ...

    async def exchange_portal_link(
        self, token_hash: str, cookie_hash: str, *, now: datetime
    ) -> PortalSession | None:
        """Exchange a link once: where the link is unused, neither it nor its session has
        expired at `now` and the minting key is live, record `cookie_hash` and return the
        session; else None. Of concurrent exchanges of one link, exactly one succeeds."""
        ...

    async def portal_session_by_link(self, token_hash: str) -> PortalSession | None:
        """The session a link token belongs to, exchanged or not (for its error page)."""
        ...

    async def portal_session_by_cookie(self, cookie_hash: str) -> PortalSession | None:
        """The exchanged session whose cookie secret hashes to `cookie_hash`, while its
        minting key is not revoked; whether it has expired is the caller's check."""
        ...

    async def end_portal_session(self, session_id: str) -> bool:
        """Delete a session (signing out); False when it did not exist."""
        ...

    async def purge_portal_sessions(self, *, now: datetime) -> int:
        """Delete the sessions expired at `now` and the links never exchanged whose fuse ran
        out; return how many."""
        ...
