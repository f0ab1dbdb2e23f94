"""The `webhooks` command against a running service: keys straight in the database, the
on-call commands over the HTTP API, human tables and --json, exit codes, and one-line
errors without a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import web

from devtools.broker import free_port
from dispatcher.ops import cli
from tests.api.harness import Api, eventually

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return orjson.loads(self.out)


@pytest.fixture
def webhooks(capsys: pytest.CaptureFixture[str], api: Api) -> Any:
    """Run `webhooks ARGS…` in a thread (it runs its own event loop) with `environ`."""

    async def run(*argv: str, key: str = "", env: Mapping[str, str] | None = None) -> Run:
        environ = {
            "WEBHOOKS_URL": api.url,
            "WEBHOOKS_API_KEY": key,
            "WEBHOOKS_DATABASE_URL": api.database_url,
            **(env or {}),
        }
        code = await asyncio.to_thread(cli.main, list(argv), environ)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


def one_line_error(run: Run) -> str:
    assert run.out == ""
    assert "Traceback" not in run.err
    assert run.err.count("\n") == 1, run.err
    return run.err


async def test_keys_are_created_listed_and_revoked_in_the_database(api: Api, webhooks: Any) -> None:
    """`keys create --json` prints {"id", "key"} once; the key works at once; `keys list`
    shows it without the secret; after `keys revoke` the API refuses it."""
    org = await api.org("keys")
    created = await webhooks("keys", "create", "--org", org, "--scopes", "webhooks:read", "--json")
    assert created.code == 0
    body = created.json()
    assert sorted(body) == ["id", "key"]
    assert body["key"].startswith("lwk_")
    listed = await webhooks("keys", "list", "--org", org)
    whoami = await api.call("GET", "/v1/whoami", body["key"])
    revoked = await webhooks("keys", "revoke", body["id"])
    again = await webhooks("keys", "revoke", body["id"])
    refused = await webhooks("endpoints", "list", key=body["key"])

    assert body["id"] in listed.out
    assert body["key"] not in listed.out
    assert (whoami.status, whoami.body["organizationId"]) == (200, org)
    assert (revoked.code, revoked.out.strip()) == (0, f"revoked {body['id']}")
    assert again.code == 1
    assert "already revoked" in one_line_error(again)
    assert refused.code == 1
    assert "UNAUTHENTICATED" in one_line_error(refused)


@pytest.mark.parametrize(
    "argv",
    [
        ["keys", "create", "--org", "org_x", "--scopes", "ops:read"],
        ["keys", "create", "--operator", "--scopes", "webhooks:write"],
        ["keys", "create", "--org", "acme", "--scopes", "webhooks:read"],
    ],
)
async def test_bad_key_requests_are_one_line_errors(webhooks: Any, argv: list[str]) -> None:
    """Scopes of the other kind of key, or a malformed org id, exit 1 with one line."""
    run = await webhooks(*argv)
    assert run.code == 1
    one_line_error(run)


async def test_a_v1a_endpoint_prints_its_public_key_never_a_secret(api: Api, webhooks: Any) -> None:
    """`endpoints create --scheme v1a` prints the whpk_ public key; rotation prints the new
    one; no secret appears in either."""
    key = await api.writer(await api.org("v1a-cli"))
    created = await webhooks(
        "endpoints", "create", "--url", "https://hooks.example.com/in", "--scheme", "v1a", key=key
    )
    assert created.code == 0, created.err
    assert "public key (v1a):\nwhpk_" in created.out
    assert "whsec_" not in created.out
    endpoint_id = next(
        line.split()[1] for line in created.out.splitlines() if line.startswith("id ")
    )
    rotated = await webhooks("endpoints", "rotate-secret", endpoint_id, key=key)
    assert rotated.code == 0, rotated.err
    assert "new public key (v1a):\nwhpk_" in rotated.out
    assert "whsec_" not in rotated.out


async def test_an_endpoint_lifecycle_with_tables_and_json(api: Api, webhooks: Any) -> None:
    """create (secret printed once), list (a table), get/update/rotate/disable/enable/test
    (--json), delete; then get is a one-line NOT_FOUND with exit 1."""
    org = await api.org("life")
    key = await api.writer(org)
    created = await webhooks(
        "endpoints",
        "create",
        "--url",
        "https://hooks.example.com/in",
        "--event",
        "content.generated",
        "--metadata",
        "team=ops",
        "--json",
        key=key,
    )
    endpoint = created.json()
    human = await webhooks("endpoints", "list", key=key)
    update = await webhooks(
        "endpoints", "update", endpoint["id"], "--rate-limit", "3", "--json", key=key
    )
    rotate = await webhooks("endpoints", "rotate-secret", endpoint["id"], "--grace", "1h", key=key)
    disable = await webhooks("endpoints", "disable", endpoint["id"], key=key)
    enable = await webhooks("endpoints", "enable", endpoint["id"], "--json", key=key)
    test = await webhooks("endpoints", "test", endpoint["id"], "--json", key=key)
    get = await webhooks("endpoints", "get", endpoint["id"], key=key)
    delete = await webhooks("endpoints", "delete", endpoint["id"], "--yes", key=key)
    gone = await webhooks("endpoints", "get", endpoint["id"], key=key)

    assert created.code == 0
    assert endpoint["secret"].startswith("whsec_")
    assert human.out.splitlines()[0].split() == [
        "ID",
        "STATUS",
        "REASON",
        "SUCCESS/24H",
        "BREAKER",
        "SCOPE",
        "URL",
        "EVENTS",
        "RATE",
    ]
    assert endpoint["id"] in human.out
    assert update.json()["rateLimit"] == 3.0
    assert "new signing secret" in rotate.out
    assert disable.out.strip() == f"{endpoint['id']} is disabled"
    assert enable.json()["status"] == "enabled"
    assert test.json()["type"] == "webhook.test"
    assert "secret" not in get.out
    assert (delete.code, gone.code) == (0, 1)
    assert "NOT_FOUND: no such webhook" in one_line_error(gone)


async def test_endpoints_show_their_health_and_operators_the_failing_ones(
    api: Api, webhooks: Any
) -> None:
    """`endpoints list` shows each endpoint's state, disabled reason, 24 h success rate and
    breaker; `endpoints get` its health block; `--health failing` the failing ones (an
    operator: across organizations)."""
    org = await api.org("cli_health")
    key = await api.writer(org)
    _, operator = await api.key(None, "ops:read")
    async with api.hooked(key, _switch({"code": 500})) as (receiver, endpoint):
        await api.publish(org)
        assert await receiver.wait_until(lambda r: len(r.received) >= 2, 30)

        async def failed() -> bool:
            shown = await api.call("GET", f"/v1/webhooks/{endpoint['id']}", key)
            return bool(shown.body["health"]["failed"] == 1)

        assert await eventually(failed)
    await webhooks("endpoints", "disable", endpoint["id"], key=key)
    listed = await webhooks("endpoints", "list", key=key)
    shown = await webhooks("endpoints", "get", endpoint["id"], key=key)
    failing = await webhooks("endpoints", "list", "--health", "failing", key=operator)
    row = next(line for line in listed.out.splitlines() if endpoint["id"] in line).split()
    assert row[:5] == [endpoint["id"], "disabled", "manual", "0.0%", "closed"]
    lines = shown.out.splitlines()
    assert lines[lines.index("health") + 1 :][:2] == [
        "  successRate1h        0.0%",
        "  successRate24h       0.0%",
    ]
    assert "  consecutiveFailures  2" in lines
    assert endpoint["id"] in failing.out


def _switch(state: dict[str, int]) -> Any:
    async def answer(n: int, request: web.Request) -> web.StreamResponse:
        return web.Response(status=state["code"])

    return answer


async def test_deliveries_events_and_replays(api: Api, webhooks: Any) -> None:
    """deliveries list/show and events show read what happened; `replay ID` replays one;
    a bulk replay counts with --dry-run, refuses without --yes off a terminal, and with
    --yes shows progress until the job is done."""
    org = await api.org("ops")
    key = await api.writer(org)
    state = {"code": 500}
    async with api.hooked(key, _switch(state)) as (receiver, endpoint):
        events = [await api.publish(org) for _ in range(3)]

        async def all_failed() -> bool:
            listing = await webhooks(
                "deliveries",
                "list",
                "--endpoint",
                endpoint["id"],
                "--status",
                "failed",
                "--since",
                "10m",
                "--json",
                key=key,
            )
            return len(listing.json()["data"]) == 3

        assert await eventually(all_failed)
        state["code"] = 200
        listing = await webhooks("deliveries", "list", "--endpoint", endpoint["id"], key=key)
        first = listing.out.splitlines()[1].split()[0]
        show = await webhooks("deliveries", "show", first, key=key)
        event = await webhooks("events", "show", events[0], key=key)
        one = await webhooks("replay", first, "--reason", "retry now", key=key)
        bulk = ["replay", "--endpoint", endpoint["id"], "--since", "10m"]
        dry = await webhooks(*bulk, "--dry-run", "--json", key=key)
        refused = await webhooks(*bulk, key=key)
        done = await webhooks(*bulk, "--yes", key=key)
        assert await receiver.wait_until(lambda r: r.delivered() == set(events), 30)

    assert "attempts:" in show.out
    assert "http_status" in show.out
    assert events[0] in event.out
    assert one.out.startswith(f"replaying {first}")
    assert dry.json() == {"dryRun": True, "count": 2}  # the third is already replayed
    assert refused.code == 2
    assert "--yes" in one_line_error(refused)
    assert done.code == 0
    assert done.out.strip().startswith("replayed 2/2 deliveries")
    assert done.err.startswith("[")
    assert "2/2 succeeded" in done.err


async def test_dead_letters_and_orgs_for_operators(api: Api, webhooks: Any) -> None:
    """An operator lists and shows dead letters; a still-invalid retry is one line; the
    platform sets an organization's parent and status."""
    org = await api.org("letters")
    _, operator = await api.key(None, "ops:read,ops:replay")
    _, platform = await api.key(None, "platform:orgs")
    await api.stack.publish(b"{oops", key=org)

    async def listed() -> bool:
        run = await webhooks(
            "dead-letters", "list", "--reason", "malformed_json", "--json", key=operator
        )
        return bool(run.json()["data"])

    assert await eventually(listed)
    letters = await webhooks("dead-letters", "list", key=operator)
    letter_id = letters.out.splitlines()[1].split()[0]
    show = await webhooks("dead-letters", "show", letter_id, "--json", key=operator)
    retry = await webhooks("dead-letters", "retry", letter_id, key=operator)
    child = f"{org}_child"
    put = await webhooks(
        "orgs", "set", child, "--parent", org, "--status", "suspended", "--json", key=platform
    )

    assert show.json()["reason"] == "malformed_json"
    assert retry.code == 1
    assert "still invalid: malformed_json" in one_line_error(retry)
    assert put.json() == {
        "id": child,
        "parentOrganizationId": org,
        "status": "suspended",
        "portalOrigins": [],
    }


@pytest.mark.parametrize(
    ("argv", "env", "code", "message"),
    [
        (["endpoints", "list"], {"WEBHOOKS_API_KEY": ""}, 1, "WEBHOOKS_API_KEY is not set"),
        (["endpoints", "list"], {"WEBHOOKS_URL": "ftp://x"}, 1, "is not an http(s) URL"),
        (["endpoints", "list"], {"closed": "1"}, 1, "cannot reach the API"),
        (
            ["deliveries", "list", "--endpoint", "ep_x", "--since", "last week"],
            {},
            2,
            "neither an RFC 3339 time",
        ),
        (["replay"], {}, 2, "give a DELIVERY_ID"),
        (["endpoints", "update", "ep_x"], {}, 2, "nothing to change"),
    ],
)
async def test_bad_input_and_an_unreachable_server_are_one_line_errors(
    api: Api, webhooks: Any, argv: list[str], env: dict[str, str], code: int, message: str
) -> None:
    """Missing configuration, an unreachable server and bad input exit non-zero with one
    line on stderr and no traceback."""
    key = await api.writer(await api.org("errors"))
    if env.pop("closed", None):
        env["WEBHOOKS_URL"] = f"http://127.0.0.1:{free_port()}"
    run = await webhooks(*argv, key=key, env=env)
    assert run.code == code
    assert message in one_line_error(run)
