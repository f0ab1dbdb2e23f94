"""Behind a TLS-terminating proxy (WEBHOOKS_PUBLIC_URL is https): portal links start with
the public URL, lead to the console under its path, and their cookies are Secure."""

from __future__ import annotations

import pytest

from tests.api.harness import Api
from tests.api.portal_harness import browser

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]

PUBLIC_URL = "https://portal.example.com/hooks"
STACK_ENV = {"WEBHOOKS_PUBLIC_URL": PUBLIC_URL + "/"}


async def test_links_and_cookies_follow_the_public_url(api: Api) -> None:
    """The link is under WEBHOOKS_PUBLIC_URL, the redirect goes to its console, and the
    cookie is Secure (the browser reaches the service over https)."""
    org = await api.org("public")
    key = (await api.key(org, "webhooks:read,org:admin"))[1]
    async with browser(api) as portal:
        url = await portal.link(key, ["webhooks:read"])
        assert url.startswith(f"{PUBLIC_URL}/console/portal/lwp_")
        opened = await portal.open(url.removeprefix("https://portal.example.com/hooks"))
    assert (opened.status, opened.headers["Location"]) == (303, "/hooks/console/")
    assert opened.cookie is not None
    assert opened.cookie["secure"]
    assert opened.cookie["httponly"]
