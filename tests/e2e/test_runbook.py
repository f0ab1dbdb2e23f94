"""The README's runbook, executed: every `webhooks …` and `curl …` step runs against a live
service with failing deliveries, a dead letter and a disabled-then-fixed endpoint."""

from __future__ import annotations

import asyncio
import re
import shlex
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from devtools import receivers
from dispatcher.core.models import DeliveryStatus
from dispatcher.ops import cli
from tests.api.harness import Api, eventually, running_api

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

README = Path(__file__).parent.parent.parent / "README.md"


def runbook_blocks() -> list[list[str]]:
    """The code blocks of the README's Runbook section, as lists of lines."""
    text = README.read_text(encoding="utf-8")
    section = text.split("### Runbook", 1)[1].split("\n## ", 1)[0]
    return [block.strip().splitlines() for block in re.findall(r"```\n(.*?)```", section, re.S)]


@pytest.fixture
async def api(tmp_path: Path, kafka_bootstrap: str) -> AsyncIterator[Api]:
    env = {"WEBHOOKS_RETRY_SCHEDULE": "50ms", "WEBHOOKS_REPLAY_RATE": "50"}
    async with running_api("sqlite", str(tmp_path), kafka_bootstrap, env) as running:
        yield running


async def test_every_runbook_step_runs_against_a_live_service(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each runbook command exits 0 (a still-invalid dead letter is refused with its reason)
    and prints something useful; nothing prints a traceback."""
    org = await api.org("runbook")
    org_key = await api.writer(org)
    _, operator_key = await api.key(None, "ops:read,ops:replay,platform:orgs")
    async with api.hooked(org_key, receivers.status(500)) as (receiver, endpoint):
        event_id = await api.publish(org)
        await api.stack.publish(b'{"id": "evt_bad", "type": "content.generated"}', key=org)
        store = api.stack.running.store

        async def failed() -> bool:
            deliveries = await store.list_deliveries(endpoint["id"])
            return [d.status for d in deliveries] == [DeliveryStatus.FAILED]

        assert await eventually(failed)
        [delivery] = await store.list_deliveries(endpoint["id"])
        [dead] = await store.list_dead_letters()
        variables = {
            "ENDPOINT": endpoint["id"],
            "ORG": org,
            "DELIVERY": delivery.id,
            "EVENT": event_id,
            "DEAD_LETTER": dead.id,
            "WEBHOOKS_URL": api.url,
        }
        ran = 0
        for block in runbook_blocks():
            key = operator_key
            for line in block:
                if line.startswith("# as the organization"):
                    key = org_key
                elif line.startswith("webhooks "):
                    await run_webhooks(api, line, variables, key, capsys)
                    ran += 1
                elif line.startswith("curl "):
                    await run_curl(line, variables)
                    ran += 1
        assert ran >= 14
        assert receiver.ids()[event_id] > 2  # two ladder attempts, then the replays


async def run_webhooks(
    api: Api,
    line: str,
    variables: dict[str, str],
    key: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [substitute(word, variables) for word in shlex.split(line)][1:]
    environ = {"WEBHOOKS_URL": api.url, "WEBHOOKS_API_KEY": key}
    code = await asyncio.to_thread(cli.main, argv, environ)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, line
    if argv[:2] == ["dead-letters", "retry"]:
        # the record is still invalid: refused, with its reason, in one line
        assert code == 1, captured
        assert "invalid_envelope" in captured.err or "schema_violation" in captured.err
        return
    assert code == 0, (line, captured.err)
    assert captured.out.strip(), line


async def run_curl(line: str, variables: dict[str, str]) -> None:
    """`curl -s URL [| grep -E 'PATTERN']`, done with aiohttp."""
    command, _, grep = line.partition("|")
    url = substitute(shlex.split(command)[-1], variables)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, line
        body = await response.text()
    if grep:
        pattern = shlex.split(grep)[-1]
        assert any(re.search(pattern, row) for row in body.splitlines()), line


def substitute(word: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$([A-Z_]+)", lambda m: variables[m.group(1)], word)
