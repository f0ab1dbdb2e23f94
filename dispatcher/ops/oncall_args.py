"""The on-call commands' command line: `endpoints`, `deliveries`, `replay`, `dead-letters`,
`events`, `orgs`, their actions and options (`dispatcher.ops.oncall` runs them)."""

from __future__ import annotations

import argparse
from typing import Any


def _common(parser: argparse.ArgumentParser, *, page: bool = False) -> None:
    parser.add_argument("--json", action="store_true", help="print the API's JSON")
    parser.add_argument(
        "--org", help="act in this organization (X-Layers-Organization: a direct child)"
    )
    if page:
        parser.add_argument("--limit", type=int, default=50, help="rows per page (1-100)")
        parser.add_argument("--after", help="the cursor printed after the previous page")


def _endpoint_options(parser: argparse.ArgumentParser, *, creating: bool) -> None:
    parser.add_argument("--url", required=creating, help="http(s) URL receiving the POSTs")
    parser.add_argument("--event", action="append", help="event type (repeat; default all)")
    parser.add_argument("--scope", choices=["own", "all_children"])
    parser.add_argument("--description")
    parser.add_argument("--metadata", action="append", metavar="KEY=VALUE")
    parser.add_argument("--rate-limit", type=float, help="requests per second")
    if creating:
        parser.add_argument(
            "--scheme",
            choices=["v1", "v1a"],
            help="signature scheme: v1 HMAC secret (default) or v1a ed25519 (a public key)",
        )
    if not creating:
        parser.add_argument("--all-events", action="store_true", help="clear the event filter")
        parser.add_argument("--no-rate-limit", action="store_true", help="remove the limit")


def _endpoints(sub: Any) -> None:
    endpoints = sub.add_parser("endpoints", help="manage webhook endpoints (HTTP API)")
    actions = endpoints.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="list endpoints with state and 24 h success")
    listing.add_argument(
        "--health",
        choices=["failing"],
        help="only failing endpoints, most recent failure first (operators: every org's)",
    )
    _common(listing, page=True)
    for name, text in [
        ("get", "show one endpoint"),
        ("delete", "delete an endpoint with its deliveries (asks first)"),
        ("enable", "enable an endpoint"),
        ("disable", "disable an endpoint (announced to its org)"),
    ]:
        action = actions.add_parser(name, help=text)
        action.add_argument("id")
        if name == "delete":
            action.add_argument("--yes", action="store_true", help="do not ask")
        _common(action)
    create = actions.add_parser("create", help="register an endpoint (prints its secret once)")
    _endpoint_options(create, creating=True)
    _common(create)
    update = actions.add_parser("update", help="change an endpoint")
    update.add_argument("id")
    _endpoint_options(update, creating=False)
    _common(update)
    rotate = actions.add_parser("rotate-secret", help="new secret; the old one signs a while")
    rotate.add_argument("id")
    rotate.add_argument("--grace", default="24h", help="how long the old secret signs (24h)")
    _common(rotate)
    test = actions.add_parser("test", help="send an example event to this endpoint only")
    test.add_argument("id")
    test.add_argument("--type", help="event type (default webhook.test)")
    _common(test)


def _others(sub: Any) -> None:
    deliveries = sub.add_parser("deliveries", help="inspect deliveries (HTTP API)")
    actions = deliveries.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="an endpoint's deliveries, newest first")
    listing.add_argument("--endpoint", required=True)
    listing.add_argument(
        "--status",
        action="append",
        help="pending, succeeded, failed, suppressed (comma-separated or repeated)",
    )
    listing.add_argument("--type")
    listing.add_argument("--since", help="RFC 3339 or a duration ago (2h, 30m)")
    listing.add_argument("--until", help="RFC 3339 or a duration ago")
    _common(listing, page=True)
    show = actions.add_parser("show", help="a delivery with every attempt and replay")
    show.add_argument("id")
    _common(show)

    replay_parser = sub.add_parser("replay", help="replay one delivery, or an endpoint's since T")
    replay_parser.add_argument("delivery_id", nargs="?", metavar="DELIVERY_ID")
    replay_parser.add_argument("--endpoint", help="bulk: the endpoint whose deliveries to replay")
    replay_parser.add_argument("--since", help="bulk: RFC 3339 or a duration ago (2h, 30m)")
    replay_parser.add_argument("--until", help="bulk: RFC 3339 or a duration ago")
    replay_parser.add_argument(
        "--status", action="append", help="bulk: statuses, comma-separated or repeated (failed)"
    )
    replay_parser.add_argument("--type", action="append", help="bulk: event types (repeat)")
    replay_parser.add_argument("--dry-run", action="store_true", help="bulk: only count")
    replay_parser.add_argument("--yes", action="store_true", help="bulk: do not ask")
    replay_parser.add_argument("--reason", help="why (recorded in the delivery's history)")
    _common(replay_parser)

    letters = sub.add_parser("dead-letters", help="records that could not become events")
    actions = letters.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="dead letters, newest first")
    listing.add_argument("--reason", help="a reason code, e.g. malformed_json")
    _common(listing, page=True)
    for name, text in [("show", "one, with its bytes"), ("retry", "re-validate and ingest")]:
        action = actions.add_parser(name, help=text)
        action.add_argument("id")
        _common(action)

    events = sub.add_parser("events", help="inspect events (HTTP API)")
    actions = events.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="an event and its deliveries")
    show.add_argument("id")
    _common(show)

    orgs = sub.add_parser("orgs", help="organizations (platform:orgs)")
    actions = orgs.add_subparsers(dest="action", required=True, metavar="ACTION")
    put = actions.add_parser("set", help="set an organization's parent and status")
    put.add_argument("org_id", metavar="ORG")
    put.add_argument("--parent", help="the parent organization")
    put.add_argument("--no-parent", action="store_true", help="make it a root organization")
    put.add_argument("--status", choices=["active", "suspended", "archived"])
    put.add_argument("--json", action="store_true", help="print the API's JSON")


def add_commands(sub: Any) -> None:
    """Add the on-call commands to the `webhooks` parser's subcommands."""
    _endpoints(sub)
    _others(sub)
