"""The on-call commands where a new user found sharp edges: comma-separated statuses, times
that name their flag, periods and reasons that would have listed nothing, dead letters shown
as what they are, and a delete that asks first."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.api.harness import Api, eventually
from tests.cli.test_cli import Run, one_line_error, webhooks

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.kafka]
__all__ = ["webhooks"]  # the fixture, shared with test_cli

BULK = ["replay", "--endpoint", "ep_x", "--since", "1h", "--dry-run"]


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (
            ["deliveries", "list", "--endpoint", "ep_x", "--status", "pending,lost"],
            ["--status 'lost' is not one of pending, succeeded, failed, suppressed"],
        ),
        (["replay", "--endpoint", "ep_x", "--since", "1h", "--status", "failed,gone"], ["'gone'"]),
        (
            ["deliveries", "list", "--endpoint", "ep_x", "--since", "2026-13-45T00:00:00Z"],
            ["--since '2026-13-45T00:00:00Z'", "month must be in 1..12", "RFC 3339", "30m"],
        ),
        (
            ["deliveries", "list", "--endpoint", "ep_x", "--until", "yesterday"],
            ["--until 'yesterday' is neither an RFC 3339 time", "a duration ago"],
        ),
        (
            ["deliveries", "list", "--endpoint", "ep_x", "--since", "1h", "--until", "2h"],
            ["--until (", "must be later than --since ("],
        ),
        ([*BULK, "--until", "3h"], ["must be later than --since"]),
        (
            ["dead-letters", "list", "--reason", "bogus"],
            ["--reason 'bogus' is not one of", "malformed_json", "undecodable_batch"],
        ),
    ],
)
async def test_bad_filters_are_refused_in_one_line_naming_the_flag(
    api: Api, webhooks: Any, argv: list[str], needles: list[str]
) -> None:
    """A bad status, time, period or reason exits 2 with one line naming the flag, before
    anything is asked of the API (the empty answer it would have given looked like news)."""
    key = await api.writer(await api.org("edges"))
    run = await webhooks(*argv, key=key)
    assert run.code == 2
    line = one_line_error(run)
    for needle in needles:
        assert needle in line


async def test_statuses_are_comma_separated_for_listing_and_bulk_replay(
    api: Api, webhooks: Any
) -> None:
    """`--status pending,failed` lists both statuses and counts both for a bulk replay."""
    key = await api.writer(await api.org("commas"))
    endpoint = await api.create(key, {"url": "https://hooks.example.com/in"})
    listing = await webhooks(
        "deliveries", "list", "--endpoint", endpoint["id"], "--status", "pending,failed", key=key
    )
    counted = await webhooks(
        "replay",
        "--endpoint",
        endpoint["id"],
        "--since",
        "1h",
        "--status",
        "pending,failed",
        "--status",
        "succeeded",
        "--dry-run",
        "--json",
        key=key,
    )
    assert (listing.code, listing.err) == (0, "")
    assert listing.out.splitlines()[0].split()[:2] == ["ID", "STATUS"]
    assert (counted.code, counted.json()) == (0, {"dryRun": True, "count": 0})


async def test_dead_letters_show_their_bytes_as_json_text_or_base64(
    api: Api, webhooks: Any
) -> None:
    """A record that parses is pretty-printed JSON, UTF-8 that does not is text (an escape
    character shown escaped), anything else base64 — each labelled."""
    org = await api.org("bytes")
    _, operator = await api.key(None, "ops:read")
    records = {
        "not_an_object": b"[1, 2]",
        "malformed_json": b'{"partner": "\x1b[31mred"',
        "invalid_utf8": b"\xff\xfe\x00data",
    }
    for value in records.values():
        await api.stack.publish(value, key=org)

    async def shown() -> dict[str, Run]:
        found: dict[str, Run] = {}
        listed = await webhooks("dead-letters", "list", "--limit", "100", "--json", key=operator)
        for letter in listed.json()["data"]:
            if letter["reason"] in records and letter["size"] == len(records[letter["reason"]]):
                found[letter["reason"]] = await webhooks(
                    "dead-letters", "show", letter["id"], key=operator
                )
        return found

    async def all_three() -> bool:
        return len(await shown()) == 3

    assert await eventually(all_three)
    runs = await shown()
    pretty = runs["not_an_object"].out
    text = runs["malformed_json"].out
    binary = runs["invalid_utf8"].out
    assert "value (JSON, 6 bytes):\n[\n  1,\n  2\n]" in pretty
    assert f"key (text, {len(org)} bytes):\n{org}" in pretty
    size = len(records["malformed_json"])
    assert f'value (text, {size} bytes):\n{{"partner": "\\x1b[31mred"' in text
    assert "\x1b" not in text
    encoded = base64.b64encode(records["invalid_utf8"]).decode()
    assert f"value (base64, 7 bytes, not UTF-8):\n{encoded}" in binary


async def test_endpoints_delete_asks_first(api: Api, webhooks: Any) -> None:
    """Off a terminal `endpoints delete` refuses without --yes and deletes nothing; with
    --yes it deletes; an unknown id fails before asking."""
    key = await api.writer(await api.org("delete"))
    endpoint = await api.create(key, {"url": "https://hooks.example.com/in"})
    refused = await webhooks("endpoints", "delete", endpoint["id"], key=key)
    still = await webhooks("endpoints", "get", endpoint["id"], key=key)
    deleted = await webhooks("endpoints", "delete", endpoint["id"], "--yes", key=key)
    unknown = await webhooks("endpoints", "delete", endpoint["id"], key=key)

    assert refused.code == 2
    assert "no terminal to confirm on: pass --yes to delete" in one_line_error(refused)
    assert still.code == 0
    assert (deleted.code, deleted.out.strip()) == (0, f"deleted {endpoint['id']}")
    assert unknown.code == 1
    assert "NOT_FOUND" in one_line_error(unknown)
