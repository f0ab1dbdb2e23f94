"""What `webhooks dev` and `webhooks demo` keep between runs and show while they run: the dev
keys reused while the store still honours them, the Kafka port kept while free, one stack per
store, and demo progress that counts each delivery once and shows no `nan`."""

from __future__ import annotations

import socket
import stat
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest

from devtools import devstate, receivers
from devtools.demo import DemoEndpoint, Progress, Published, _summary, count_progress
from devtools.receivers import Received, Receiver
from dispatcher.core.models import DeliveryStatus
from dispatcher.core.scopes import hash_key
from dispatcher.errors import UsageError
from dispatcher.store import SQLiteStore, Store
from dispatcher.store.secretbox import SecretBox, new_endpoint_secret


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    async with SQLiteStore(str(tmp_path / "w.db"), secret_box=SecretBox.generate()) as opened:
        await opened.migrate()
        yield opened


async def test_dev_keys_are_kept_private_and_reused_until_revoked(
    store: Store, tmp_path: Path
) -> None:
    """A second start reuses both keys (dev.json is 0600); once the operator key is revoked
    the next start mints a new one and keeps the organization's."""
    state = tmp_path / "state"
    state.mkdir()
    first = await devstate.dev_keys(store, state)
    second = await devstate.dev_keys(store, state)
    mode = stat.S_IMODE((state / "dev.json").stat().st_mode)
    operator = await store.api_key_by_hash(hash_key(first[0]))
    assert operator is not None
    await store.revoke_api_key(operator.id, now=datetime.now(UTC))
    third = await devstate.dev_keys(store, state)

    assert second == first
    assert mode == 0o600
    assert third[0] != first[0]
    assert third[1] == first[1]
    assert len(await store.list_api_keys()) == 3


async def test_dev_keys_from_another_store_are_not_reused(store: Store, tmp_path: Path) -> None:
    """Keys kept in dev.json that this store never held are replaced, not printed."""
    state = tmp_path / "state"
    state.mkdir()
    async with SQLiteStore(str(tmp_path / "other.db"), secret_box=SecretBox.generate()) as other:
        await other.migrate()
        elsewhere = await devstate.dev_keys(other, state)
    here = await devstate.dev_keys(store, state)
    assert set(here).isdisjoint(elsewhere)


def test_the_kafka_port_is_kept_while_it_is_free(tmp_path: Path) -> None:
    """The remembered port comes back while free; taken by someone else, none is imposed."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        devstate.remember_kafka_port(tmp_path, port)
        taken = devstate.kafka_port(tmp_path)
    assert taken is None
    assert devstate.kafka_port(tmp_path) == port


def test_a_second_stack_on_the_same_store_is_refused_in_one_line(tmp_path: Path) -> None:
    """While `dev` holds the state directory, `demo` there is a UsageError naming `dev` and
    its pid; once `dev` is gone the directory is free again."""
    with (
        devstate.stack_lock(tmp_path, "dev"),
        pytest.raises(UsageError) as refused,
        devstate.stack_lock(tmp_path, "demo"),
    ):
        pass  # pragma: no cover - not reached
    with devstate.stack_lock(tmp_path, "demo"):
        pass
    message = str(refused.value)
    assert "\n" not in message
    assert "`webhooks dev` (pid " in message
    assert "is running on the store in" in message


class MovingCounts:
    """A store whose deliveries finish while they are being counted: after every count one
    pending delivery of the first endpoint succeeds (`count_deliveries` is all it offers)."""

    def __init__(self, pending: dict[str, int]) -> None:
        self.statuses = {
            endpoint: [DeliveryStatus.PENDING] * count for endpoint, count in pending.items()
        }

    async def count_deliveries(
        self, endpoint_id: str, *, statuses: Collection[DeliveryStatus] | None = None
    ) -> int:
        counted = sum(1 for s in self.statuses[endpoint_id] if statuses is None or s in statuses)
        first = next(iter(self.statuses.values()))
        if DeliveryStatus.PENDING in first:
            first[first.index(DeliveryStatus.PENDING)] = DeliveryStatus.SUCCEEDED
        return counted


async def test_progress_never_counts_a_delivery_twice() -> None:
    """Deliveries that finish between the counts are never counted both as pending and as
    finished: the total shown never exceeds the deliveries there are."""
    endpoints = [DemoEndpoint(f"e{i}", "org_a", receivers.healthy()) for i in range(3)]
    for i, demo in enumerate(endpoints):
        demo.endpoint_id = f"ep_{i}"
    moving = MovingCounts({"ep_0": 6, "ep_1": 2, "ep_2": 2})
    progress = Progress()
    for _ in range(4):
        await count_progress(cast(Store, moving), endpoints, progress)
        assert progress.expected <= 10
    await count_progress(cast(Store, moving), endpoints, progress)
    assert (progress.expected, progress.pending, progress.succeeded) == (10, 4, 6)


def test_an_endpoint_with_no_success_shows_a_dash_not_nan() -> None:
    """The summary's latency columns say "—" for an endpoint nothing reached successfully."""
    receiver = Receiver(new_endpoint_secret())
    receiver.received.append(
        Received(
            webhook_id="evt_1",
            timestamp="0",
            body=b"{}",
            verified=True,
            error=None,
            at=1.0,
            status=503,
        )
    )
    failing = DemoEndpoint("always-failing", "org_a", receivers.status(503), receiver=receiver)
    summary = _summary([failing], Published(at={"evt_1": 0.5}, deliveries=1), {failing.name: 1})
    row = summary.splitlines()[-1].split()
    assert "nan" not in summary
    assert row == ["always-failing", "0", "0", "1", "—", "—", "1/1"]
