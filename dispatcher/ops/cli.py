"""The `webhooks` command (also `python -m dispatcher`).

Service commands (`serve`, `dev`, `demo`, `migrate`) read `WEBHOOKS_*` settings (the first
three are launched by `dispatcher.__main__`, which sits above the service); `publish`
produces an event to Kafka; `keys` manages API keys directly in WEBHOOKS_DATABASE_URL (no
server needed, so the first key can be made). The on-call commands (`endpoints`,
`deliveries`, `replay`, `dead-letters`, `events`, `orgs`, in dispatcher.ops.oncall) talk to the
HTTP API at WEBHOOKS_URL with WEBHOOKS_API_KEY. Errors are one clear line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from dispatcher import __version__
from dispatcher.errors import CommandError, ConfigurationError, UsageError
from dispatcher.ops import oncall, oncall_args
from dispatcher.settings import Settings

if TYPE_CHECKING:
    from dispatcher.store import Store

EXIT_USAGE = 2
PUBLISH_TIMEOUT_MS = 10_000  # a publish gives up after this long
EXIT_FAILURE = 1


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed (the service's event loop of choice)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


# -- service commands -------------------------------------------------------------------


async def _migrate(settings: Settings) -> int:
    from dispatcher.store import open_store
    from dispatcher.store.secretbox import SecretBox

    box = SecretBox.from_setting(settings.encryption_key) if settings.encryption_key else None
    async with open_store(settings.database_url, secret_box=box or SecretBox.generate()) as store:
        applied = await store.migrate()
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


async def _secrets(settings: Settings, args: argparse.Namespace) -> int:
    """`secrets reencrypt`: batch by batch (each its own transaction, so an interrupted run
    resumes where it stopped), with a progress line and the count."""
    from dispatcher.errors import StoreError
    from dispatcher.ops.console import ProgressLine
    from dispatcher.store import open_store
    from dispatcher.store.secretbox import SecretBox

    if not settings.encryption_key:
        raise CommandError("WEBHOOKS_ENCRYPTION_KEY is not set (the new key first, then the old)")
    if args.batch < 1:
        raise UsageError("--batch must be at least 1")
    box = SecretBox.from_setting(settings.encryption_key)
    progress = ProgressLine(sys.stderr)
    done = 0
    try:
        async with open_store(settings.database_url, secret_box=box) as store:
            await store.migrate()
            while True:
                resealed, remaining = await store.reencrypt_secrets(limit=args.batch)
                done += resealed
                progress.update(done, done + remaining, "re-encrypting signing secrets")
                if not remaining:
                    break
    except StoreError as exc:  # unreachable, or a secret none of the keys opens
        raise CommandError(f"stopped after {done} re-encrypted: {exc}") from None
    finally:
        progress.close()
    print(
        f"re-encrypted {done} signing secret(s) with the first key of WEBHOOKS_ENCRYPTION_KEY; "
        "the keys after it can now be removed"
    )
    return 0


async def _publish(settings: Settings, args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    from dispatcher.clock import new_id, utcnow
    from dispatcher.core.catalog import Catalog
    from dispatcher.core.envelope import encode_event
    from dispatcher.core.routing import OPERATIONAL_PREFIX
    from dispatcher.errors import EventError

    if not settings.kafka_bootstrap_servers:
        raise CommandError("WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS is not set")
    try:
        data = orjson.loads(args.data)
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"--data is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CommandError("--data must be a JSON object")
    catalog = Catalog.load()
    if args.example:
        if args.type not in catalog:
            raise CommandError(f"unknown event type {args.type!r}")
        example = dict(catalog.examples(args.type)[0])
        example.pop("organizationId", None)
        data = {**example, **data}
    data.setdefault("organizationId", args.org)
    try:
        body = encode_event(
            args.type,
            args.org,
            data,
            catalog=catalog,
            event_id=args.id or new_id("evt"),
            created=utcnow(),
        )
    except EventError as exc:
        raise CommandError(str(exc)) from exc
    servers = settings.kafka_bootstrap_servers
    # The client logs each refused connection; the one line below says it all.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_idempotence=False,
        request_timeout_ms=PUBLISH_TIMEOUT_MS,
    )
    topic = args.topic or settings.kafka_topics[0]
    try:
        await producer.start()
        meta = await producer.send_and_wait(topic, body, key=args.org.encode())
    except KafkaError as exc:
        raise CommandError(f"cannot publish to Kafka at {servers} ({exc})") from None
    finally:
        await producer.stop()  # also after a failed start: no "Unclosed AIOKafkaProducer"
    event_id = orjson.loads(body)["id"]
    if args.type.startswith(OPERATIONAL_PREFIX):
        print(
            f"webhooks publish: note: {args.type} reaches only endpoints that name it in their "
            "`events` (webhook.* types are opt-in; subscribing to every type does not include "
            "them)",
            file=sys.stderr,
        )
    if args.json:
        print(
            orjson.dumps(
                {"id": event_id, "topic": topic, "partition": meta.partition, "offset": meta.offset}
            ).decode()
        )
    else:
        print(f"published {event_id} to {topic}[{meta.partition}]@{meta.offset}")
    return 0


# -- API keys, straight to the database ---------------------------------------------------


async def _keys(settings: Settings, args: argparse.Namespace) -> int:
    from dispatcher.errors import KeyRequestError, StoreUnavailableError
    from dispatcher.store import open_store
    from dispatcher.store.secretbox import SecretBox

    # Keys need no endpoint secrets: any box opens the store when no key is configured.
    box = SecretBox.from_setting(settings.encryption_key) if settings.encryption_key else None
    try:
        async with open_store(settings.database_url, secret_box=box or SecretBox.generate()) as db:
            await db.migrate()
            return await KEY_ACTIONS[args.action](db, args)
    except StoreUnavailableError as exc:
        raise CommandError(f"database unavailable: {exc}") from None
    except KeyRequestError as exc:
        raise CommandError(str(exc)) from None


async def _keys_create(store: Store, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from dispatcher.clock import new_id, random_bytes
    from dispatcher.core.scopes import KEY_ENTROPY_BYTES, hash_key, new_api_key, parse_scopes

    scopes = parse_scopes(args.scopes, operator=args.operator)
    record, secret = new_api_key(
        organization_id=None if args.operator else args.org,
        scopes=scopes,
        name=args.name,
        now=datetime.now(UTC),
        key_id=new_id("key"),
        entropy=random_bytes(KEY_ENTROPY_BYTES),
    )
    await store.create_api_key(record, hash_key(secret))
    if args.json:
        print(orjson.dumps({"id": record.id, "key": secret}).decode())
    else:
        owner = "operator key" if args.operator else f"key for {args.org}"
        print(f"created {owner} {record.id} with scopes {', '.join(sorted(record.scopes))}")
        print(secret)
        print("(shown once: store it now; only a hash of it is kept)")
    return 0


async def _keys_list(store: Store, args: argparse.Namespace) -> int:
    from dispatcher.core.scopes import key_view
    from dispatcher.ops.console import table

    keys: list[dict[str, Any]] = [
        key_view(k) for k in await store.list_api_keys(organization_id=args.org)
    ]
    if args.json:
        print(orjson.dumps(keys).decode())
        return 0
    for key in keys:
        key["organizationId"] = key["organizationId"] or "(operator)"
    columns = [
        ("id", "id"),
        ("organizationId", "organization"),
        ("scopes", "scopes"),
        ("name", "name"),
        ("createdAt", "created"),
        ("revokedAt", "revoked"),
    ]
    print(table(keys, columns))
    return 0


async def _keys_revoke(store: Store, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    if not await store.revoke_api_key(args.key_id, now=datetime.now(UTC)):
        raise CommandError(f"{args.key_id}: no such key, or already revoked")
    print(f"revoked {args.key_id}")
    return 0


KEY_ACTIONS = {"create": _keys_create, "list": _keys_list, "revoke": _keys_revoke}


def _add_keys(sub: Any) -> None:
    keys = sub.add_parser("keys", help="API keys, directly in WEBHOOKS_DATABASE_URL")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a key and print it once")
    owner = create.add_mutually_exclusive_group(required=True)
    owner.add_argument("--org", help="the organization the key belongs to (org_…)")
    owner.add_argument("--operator", action="store_true", help="an operator key (no org)")
    create.add_argument(
        "--scopes",
        required=True,
        help="comma list: webhooks:read,webhooks:write,org:admin (org keys) or "
        "ops:read,ops:replay,platform:orgs (operator keys)",
    )
    create.add_argument("--name", default="", help="what the key is for")
    create.add_argument("--json", action="store_true", help='print {"id": …, "key": …}')
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--org", help="only this organization's keys")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = actions.add_parser("revoke", help="revoke a key (effective at once)")
    revoke.add_argument("key_id", metavar="KEY_ID")


# -- the parser -------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="webhooks", description="Layers Webhooks: signed, retried webhook delivery."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("serve", help="run the service (consumer, scheduler, HTTP API)")
    sub.add_parser("dev", help="run the embedded stack (Tansu + SQLite) until Ctrl-C")
    sub.add_parser("demo", help="run the scripted demo on the embedded stack, then exit")
    sub.add_parser("migrate", help="apply database migrations to WEBHOOKS_DATABASE_URL")
    secrets = sub.add_parser("secrets", help="stored endpoint signing secrets").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    reencrypt = secrets.add_parser(
        "reencrypt",
        help="seal every stored signing secret with the first WEBHOOKS_ENCRYPTION_KEY key "
        "(then older keys can be dropped); resumable",
    )
    reencrypt.add_argument("--batch", type=int, default=500, help="secrets per transaction")
    publish = sub.add_parser("publish", help="produce an event to Kafka")
    publish.add_argument("--type", required=True, help="event type from the catalog")
    publish.add_argument("--org", required=True, help="organization id (org_…)")
    publish.add_argument("--data", default="{}", help="the event's data as a JSON object")
    publish.add_argument(
        "--example",
        action="store_true",
        help="start from the catalog's example data for the type (--data fields override)",
    )
    publish.add_argument("--id", default="", help="event id (default: a new evt_… id)")
    publish.add_argument("--topic", default="", help="topic (default: the first configured)")
    publish.add_argument("--json", action="store_true", help="print JSON")
    _add_keys(sub)
    oncall_args.add_commands(sub)
    return parser


Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


# The commands that run the service itself (`serve`) or the embedded stack (`dev`, `demo`)
# live above this layer; `dispatcher.__main__` passes them in by name.
Launcher = Callable[[Mapping[str, str]], Coroutine[Any, Any, int]]
LAUNCHED = ("serve", "dev", "demo")


def _require_store(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """The commands that open the store directly name it: none falls back to the service's
    default `./webhooks.db` (which would be created in whatever directory this runs in), and
    one that only reads or changes what is there never creates an empty SQLite file."""
    from pathlib import Path

    from dispatcher.errors import DatabaseUrlError
    from dispatcher.setting_values import SQLITE_PREFIX

    url = environ.get("WEBHOOKS_DATABASE_URL", "")
    name = " ".join(filter(None, [args.command, getattr(args, "action", None)]))
    if not url:
        raise DatabaseUrlError(
            f"WEBHOOKS_DATABASE_URL is not set: `webhooks {name}` works directly on the store "
            "(sqlite:///path/to/webhooks.db or postgresql://user@host/db)"
        )
    creates = args.command == "migrate" or (args.command, args.action) == ("keys", "create")
    path = url.removeprefix(SQLITE_PREFIX)
    if not creates and url.startswith(SQLITE_PREFIX) and path and not Path(path).exists():
        raise CommandError(
            f"no database at {path} (WEBHOOKS_DATABASE_URL): check the path, or create it "
            "with `webhooks migrate`"
        )


COMMANDS: dict[str, Command] = {
    "migrate": lambda settings, args: _migrate(settings),
    "secrets": _secrets,
    "publish": _publish,
    "keys": _keys,
}


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    launchers: Mapping[str, Launcher] | None = None,
) -> int:
    """Run one `webhooks` command; `launchers` run `serve`, `dev` and `demo`."""
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        if args.command in LAUNCHED:
            launcher = (launchers or {}).get(args.command)
            if launcher is None:
                raise CommandError("not available here: run it as `webhooks` (dispatcher.__main__)")
            return run_async(launcher(environ))
        if args.command in oncall.COMMANDS:  # WEBHOOKS_URL and WEBHOOKS_API_KEY only
            return run_async(oncall.run(args, environ))
        if args.command != "publish":
            _require_store(args, environ)
        settings = Settings.from_env(environ)
        return run_async(COMMANDS[args.command](settings, args))
    except ConfigurationError as exc:  # every bad setting, the database URL, the key
        print(f"webhooks: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as exc:
        print(f"webhooks {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:  # ApiClientError too
        print(f"webhooks {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
