"""Bad input becomes a dead letter with a reason, and the partition keeps moving."""

from __future__ import annotations

import pytest

from devtools.receivers import Receiver
from dispatcher.store.secretbox import new_endpoint_secret
from tests.e2e.harness import Stack, envelope
from tests.e2e.test_pipeline import WAIT, eventually

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

ORG = "org_badinput"


def corpus() -> list[tuple[str, bytes | None]]:
    """(expected reason, record value) for every kind of bad record."""
    _, good = envelope(ORG)
    return [
        ("malformed_json", b'{"id": "evt_1", "type": '),
        ("invalid_utf8", b'{"id":"evt_\xff"}'),
        ("too_large", b'{"pad":"' + b"x" * (300 * 1024) + b'"}'),
        ("too_deep", b'{"a":' * 100 + b"1" + b"}" * 100),
        ("non_finite_number", good.replace(b'"data":{', b'"data":{"x":NaN,')),
        ("duplicate_keys", good.replace(b'"data":{', b'"data":{"organizationId":"org_x",')),
        ("unknown_type", good.replace(b'"content.generated"', b'"content.exploded"')),
        ("schema_violation", envelope(ORG, data={"contentId": 42})[1]),
        ("tombstone", None),
        ("not_an_object", b"[1,2,3]"),
    ]


async def test_every_bad_record_is_dead_lettered_and_the_next_good_one_delivered(
    stack: Stack,
) -> None:
    """Each bad record yields one dead letter with its reason and original bytes; the good
    record published after all of them is still delivered."""
    await stack.org(ORG)
    secret = new_endpoint_secret()
    async with Receiver(secret) as receiver:
        await stack.endpoint(ORG, receiver.url, secret=secret)
        bad = corpus()
        for _, value in bad:
            await stack.publish(value, key=ORG)
        good_id, good = envelope(ORG)
        await stack.publish(good, key=ORG)
        assert await receiver.wait_until(lambda r: good_id in r.delivered(), WAIT)

        async def all_dead_lettered() -> bool:
            return len(await stack.running.store.list_dead_letters()) == len(bad)

        assert await eventually(all_dead_lettered)
        letters = await stack.running.store.list_dead_letters()
        by_offset = sorted(letters, key=lambda letter: letter.offset)
        assert [d.reason for d in by_offset] == [reason for reason, _ in bad]
        assert [d.value for d in by_offset] == [value for _, value in bad]
        assert all(d.topic == stack.topic and d.detail for d in by_offset)
        assert receiver.ids() == {good_id: 1}
