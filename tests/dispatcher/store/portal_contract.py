"""The Store contract for the partner portal: portal origins and portal sessions, mixed into
each backend's contract class next to `StoreContract` (whose fixtures it uses)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

from dispatcher.core.models import Organization
from dispatcher.core.portal import PortalSession
from dispatcher.store import Store
from tests.dispatcher.store.contract import HOUR, ORG, SECOND, T0, api_key

MINUTE = timedelta(minutes=1)


def session(session_id: str = "pss_1", *, key_id: str = "key_admin") -> PortalSession:
    return PortalSession(
        id=session_id,
        organization_id=ORG,
        key_id=key_id,
        scopes=frozenset({"webhooks:read"}),
        created_at=T0,
        link_expires_at=T0 + 5 * MINUTE,
        expires_at=T0 + HOUR,
    )


async def minted(store: Store, session_id: str = "pss_1", *, key_id: str = "key_admin") -> None:
    if not await store.get_api_keys([key_id]):
        await store.create_api_key(api_key(key_id, ORG, {"org:admin"}), f"key-hash-{key_id}")
    await store.create_portal_session(session(session_id, key_id=key_id), f"link-{session_id}")


class PortalContract:
    """Portal origins and sessions behave alike on every backend."""

    async def test_portal_origins_are_kept_apart_from_the_organizations_tree(
        self, store: Store
    ) -> None:
        """Origins read back with the organization, survive a change of its parent or status,
        and cannot be set on an organization that does not exist."""
        await store.put_organization(Organization(id=ORG))
        assert await store.set_portal_origins(
            ORG, ["https://a.example", "https://b.example:8443"], now=T0
        )
        await store.put_organization(Organization(id=ORG, parent_id="org_parent"))
        found = await store.get_organization(ORG)
        assert found is not None
        assert found.portal_origins == ("https://a.example", "https://b.example:8443")
        assert found.parent_id == "org_parent"
        assert not await store.set_portal_origins("org_missing", [], now=T0)

    async def test_a_link_is_exchanged_once(self, store: Store) -> None:
        """The first exchange records the cookie and returns the session; the second finds
        nothing, and the session is then found by its cookie, not by a second link."""
        await minted(store)
        exchanged = await store.exchange_portal_link("link-pss_1", "cookie-1", now=T0 + SECOND)
        assert exchanged == replace(session(), exchanged_at=T0 + SECOND)
        assert await store.exchange_portal_link("link-pss_1", "cookie-2", now=T0 + SECOND) is None
        assert await store.portal_session_by_cookie("cookie-1") == exchanged
        assert await store.portal_session_by_cookie("cookie-2") is None
        assert await store.portal_session_by_link("link-pss_1") == exchanged

    async def test_concurrent_exchanges_of_one_link_yield_one_session(self, store: Store) -> None:
        """Of ten exchanges of one link at once, exactly one succeeds."""
        await minted(store)
        results = await asyncio.gather(
            *(
                store.exchange_portal_link("link-pss_1", f"cookie-{i}", now=T0 + SECOND)
                for i in range(10)
            )
        )
        assert sum(result is not None for result in results) == 1

    async def test_an_expired_link_cannot_be_exchanged(self, store: Store) -> None:
        """A link opened after its fuse ran out is refused (and stays unexchanged)."""
        await minted(store)
        late = T0 + 5 * MINUTE
        assert await store.exchange_portal_link("link-pss_1", "cookie-1", now=late) is None
        found = await store.portal_session_by_link("link-pss_1")
        assert found is not None
        assert found.exchanged_at is None

    async def test_revoking_the_minting_key_ends_its_sessions_and_links(self, store: Store) -> None:
        """Once the key that minted them is revoked, a session's cookie finds nothing and an
        unopened link cannot be exchanged."""
        await minted(store, "pss_1")
        await minted(store, "pss_2")
        assert await store.exchange_portal_link("link-pss_1", "cookie-1", now=T0) is not None
        await store.revoke_api_key("key_admin", now=T0 + SECOND)
        assert await store.portal_session_by_cookie("cookie-1") is None
        assert await store.exchange_portal_link("link-pss_2", "cookie-2", now=T0) is None

    async def test_ending_a_session_forgets_it(self, store: Store) -> None:
        """An ended session's cookie finds nothing; ending it again says it did not exist."""
        await minted(store)
        await store.exchange_portal_link("link-pss_1", "cookie-1", now=T0)
        assert await store.end_portal_session("pss_1")
        assert await store.portal_session_by_cookie("cookie-1") is None
        assert not await store.end_portal_session("pss_1")

    async def test_purge_forgets_expired_sessions_and_unopened_links(self, store: Store) -> None:
        """Purging keeps a live session and an unexpired link, and deletes an expired session
        and a link whose fuse ran out unopened."""
        await minted(store, "pss_live")
        await minted(store, "pss_unopened")
        await store.exchange_portal_link("link-pss_live", "cookie-live", now=T0)
        assert await store.purge_portal_sessions(now=T0 + MINUTE) == 0
        assert await store.purge_portal_sessions(now=T0 + 10 * MINUTE) == 1  # the unopened
        assert await store.portal_session_by_cookie("cookie-live") is not None
        assert await store.purge_portal_sessions(now=T0 + HOUR) == 1
        assert await store.portal_session_by_cookie("cookie-live") is None
