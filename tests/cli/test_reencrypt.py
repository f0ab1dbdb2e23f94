"""`webhooks reencrypt`: rotating WEBHOOKS_ENCRYPTION_KEY all the way, so the old key can go.

A real database file, the real command as a child process, the store to check the result.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from devtools.receivers import Receiver
from dispatcher.core.models import Endpoint, Organization
from dispatcher.errors import DecryptionError
from dispatcher.store import open_store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret
from tests.e2e.harness import envelope, running_stack, stack_settings

OLD, NEW = os.urandom(32), os.urandom(32)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def webhooks(*argv: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command, fixed argv
        [sys.executable, "-m", "dispatcher", *argv],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_reencrypt_moves_every_secret_to_the_new_key(tmp_path: Path) -> None:
    """Secrets sealed with the old key; `reencrypt` with "new,old" reseals them all (and a
    second run finds nothing to do); then the new key alone reads them, the old one none."""
    url = f"sqlite:///{tmp_path}/w.db"
    secrets = {f"ep_{i}": new_endpoint_secret() for i in range(3)}
    now = datetime.now(UTC)
    async with open_store(url, secret_box=SecretBox([OLD])) as store:
        await store.migrate()
        for endpoint_id, secret in secrets.items():
            endpoint = Endpoint(id=endpoint_id, organization_id="org_a", url="https://a.example")
            await store.create_endpoint(endpoint, secret, now=now)

    env = {"WEBHOOKS_DATABASE_URL": url, "WEBHOOKS_ENCRYPTION_KEY": f"{b64(NEW)},{b64(OLD)}"}
    first = webhooks("secrets", "reencrypt", "--batch", "2", env=env)
    second = webhooks("secrets", "reencrypt", env=env)
    assert (first.returncode, second.returncode) == (0, 0), first.stderr
    assert first.stdout.startswith("re-encrypted 3 signing secret(s)")
    # not a terminal: one progress line per batch (2, then 1 more), on stderr
    assert [line.split()[1] for line in first.stderr.splitlines()] == ["2/3", "3/3"]
    assert second.stdout.startswith("re-encrypted 0 signing secret(s)")

    async with open_store(url, secret_box=SecretBox([NEW])) as store:
        stored = await store.signing_secrets(list(secrets), now=now)
        assert stored == {endpoint_id: (secret,) for endpoint_id, secret in secrets.items()}
    async with open_store(url, secret_box=SecretBox([OLD])) as store:
        with pytest.raises(DecryptionError):
            await store.signing_secrets(["ep_0"], now=now)


def test_reencrypt_without_the_old_key_changes_nothing_and_says_why(tmp_path: Path) -> None:
    """Only the new key configured: a secret it cannot open is one line, exit 1."""
    url = f"sqlite:///{tmp_path}/w.db"

    async def seed() -> None:
        async with open_store(url, secret_box=SecretBox([OLD])) as store:
            await store.migrate()
            endpoint = Endpoint(id="ep_1", organization_id="org_a", url="https://a.example")
            await store.create_endpoint(endpoint, new_endpoint_secret(), now=datetime.now(UTC))

    import asyncio

    asyncio.run(seed())
    done = webhooks(
        "secrets",
        "reencrypt",
        env={"WEBHOOKS_DATABASE_URL": url, "WEBHOOKS_ENCRYPTION_KEY": b64(NEW)},
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    line = done.stderr.splitlines()[-1]
    assert line.startswith("webhooks secrets: stopped after 0 re-encrypted:")
    assert "not among the configured keys" in line


@pytest.mark.kafka
async def test_after_reencrypting_the_service_signs_with_the_new_key_alone(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """The whole rotation: an endpoint registered under the old key, `secrets reencrypt`
    with "new,old", then the service started with the new key alone delivers, and the
    receiver verifies the signature with the endpoint's secret."""
    url = f"sqlite:///{tmp_path}/w.db"
    secret = new_endpoint_secret()
    async with Receiver(secret) as receiver:
        async with open_store(url, secret_box=SecretBox([OLD])) as store:
            await store.migrate()
            await store.put_organization(Organization(id="org_rot"))
            endpoint = Endpoint(id="ep_rot", organization_id="org_rot", url=receiver.url)
            await store.create_endpoint(endpoint, secret, now=datetime.now(UTC))
        env = {"WEBHOOKS_DATABASE_URL": url, "WEBHOOKS_ENCRYPTION_KEY": f"{b64(NEW)},{b64(OLD)}"}
        assert webhooks("secrets", "reencrypt", env=env).returncode == 0

        settings = stack_settings(url, kafka_bootstrap, WEBHOOKS_ENCRYPTION_KEY=b64(NEW))
        async with running_stack(settings) as stack:
            event_id, body = envelope("org_rot")
            await stack.publish(body, key="org_rot")
            assert await receiver.wait_until(lambda r: event_id in r.delivered(), 30)
        assert all(r.verified for r in receiver.received)
