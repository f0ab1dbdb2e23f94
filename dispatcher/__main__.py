"""The `webhooks` command (`python -m dispatcher`): the on-call and admin commands of
`dispatcher.ops.cli`, plus the three that run something above that layer — `serve` (the
service, or its supervised workers: dispatcher.workers) and `dev` / `demo` (the embedded
stack of `devtools`, in a source checkout only).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence

from dispatcher import logs
from dispatcher.errors import CommandError
from dispatcher.ops import cli
from dispatcher.settings import Settings


async def _serve(environ: Mapping[str, str]) -> int:
    from dispatcher.workers import serve

    settings = Settings.from_env(environ)
    settings.require_production()
    logs.configure(settings.log_level)
    return await serve(settings, environ)


async def _embedded(command: str, environ: Mapping[str, str]) -> int:
    try:
        from devtools import demo
    except ImportError:
        raise CommandError(
            "needs the development tools (devtools/), which ship only in a source checkout: "
            f"run `make {command}` there"
        ) from None
    logs.configure(environ.get("WEBHOOKS_LOG_LEVEL", "warning"))
    return await (demo.run_dev if command == "dev" else demo.run_demo)(environ)


async def _dev(environ: Mapping[str, str]) -> int:
    return await _embedded("dev", environ)


async def _demo(environ: Mapping[str, str]) -> int:
    return await _embedded("demo", environ)


LAUNCHERS: Mapping[str, cli.Launcher] = {"serve": _serve, "dev": _dev, "demo": _demo}


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    return cli.main(argv, environ, launchers=LAUNCHERS)


if __name__ == "__main__":
    sys.exit(main())
