"""The `webhooks` command (also `python -m dispatcher`).

Service commands (`serve`, `dev`, `demo`, `migrate`) read `WEBHOOKS_*` settings; `publish`
produces an event to Kafka. Errors are one clear line on stderr and a non-zero exit, never
a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import orjson

from dispatcher import __version__
from dispatcher.settings import Settings, SettingsError

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CommandError(Exception):
    """A failure to report as one line (no traceback)."""


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run on uvloop when it is installed (the service's event loop of choice)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux and macOS
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


# -- service commands -------------------------------------------------------------------


async def _serve(settings: Settings) -> int:
    from dispatcher import logs
    from dispatcher.service import Service

    settings.require_production()
    logs.configure(settings.log_level)
    await Service(settings).run()
    return 0


async def _migrate(settings: Settings) -> int:
    from dispatcher.secretbox import SecretBox
    from dispatcher.store import open_store

    box = SecretBox.from_setting(settings.encryption_key) if settings.encryption_key else None
    async with open_store(settings.database_url, secret_box=box or SecretBox.generate()) as store:
        applied = await store.migrate()
    print(f"applied {len(applied)} migration(s)" + (f": {', '.join(applied)}" if applied else ""))
    return 0


async def _publish(settings: Settings, args: argparse.Namespace) -> int:
    from aiokafka import AIOKafkaProducer

    from dispatcher.catalog import Catalog
    from dispatcher.events import encode_event

    if not settings.kafka_bootstrap_servers:
        raise CommandError("WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS is not set")
    try:
        data = orjson.loads(args.data)
    except orjson.JSONDecodeError as exc:
        raise CommandError(f"--data is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise CommandError("--data must be a JSON object")
    data.setdefault("organizationId", args.org)
    try:
        body = encode_event(
            args.type, args.org, data, catalog=Catalog.load(), event_id=args.id or None
        )
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_idempotence=False
    )
    await producer.start()
    try:
        topic = args.topic or settings.kafka_topics[0]
        meta = await producer.send_and_wait(topic, body, key=args.org.encode())
    finally:
        await producer.stop()
    event_id = orjson.loads(body)["id"]
    if args.json:
        print(
            orjson.dumps(
                {"id": event_id, "topic": topic, "partition": meta.partition, "offset": meta.offset}
            ).decode()
        )
    else:
        print(f"published {event_id} to {topic}[{meta.partition}]@{meta.offset}")
    return 0


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
    publish = sub.add_parser("publish", help="produce an event to Kafka")
    publish.add_argument("--type", required=True, help="event type from the catalog")
    publish.add_argument("--org", required=True, help="organization id (org_…)")
    publish.add_argument("--data", default="{}", help="the event's data as a JSON object")
    publish.add_argument("--id", default="", help="event id (default: a new evt_… id)")
    publish.add_argument("--topic", default="", help="topic (default: the first configured)")
    publish.add_argument("--json", action="store_true", help="print JSON")
    return parser


Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]


async def _dev(environ: Mapping[str, str]) -> int:
    from dispatcher import demo, logs

    logs.configure(environ.get("WEBHOOKS_LOG_LEVEL", "warning"))
    return await demo.run_dev(environ)


async def _demo(environ: Mapping[str, str]) -> int:
    from dispatcher import demo, logs

    logs.configure(environ.get("WEBHOOKS_LOG_LEVEL", "warning"))
    return await demo.run_demo(environ)


COMMANDS: dict[str, Command] = {
    "serve": lambda settings, args: _serve(settings),
    "migrate": lambda settings, args: _migrate(settings),
    "publish": _publish,
}


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = os.environ if environ is None else environ
    try:
        if args.command in {"dev", "demo"}:  # embedded defaults first, then the settings
            return run_async((_dev if args.command == "dev" else _demo)(environ))
        settings = Settings.from_env(environ)
        return run_async(COMMANDS[args.command](settings, args))
    except SettingsError as exc:
        print(f"webhooks: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandError as exc:
        print(f"webhooks {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
