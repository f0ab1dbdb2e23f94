"""`python -m chaos`: inject faults into the real service and prove nothing is lost.

    python -m chaos                     every scenario, full parameters (a few minutes)
    python -m chaos --reduced           a few kills, short outages (about 90 s)
    python -m chaos --only sigkill,disk-full --seed 7
    python -m chaos --outage 60         keep the broker away for 60 s

Each scenario prints one PASS/FAIL/SKIP line with its checks; the last line is
`N passed, M failed`, and the exit status is non-zero when anything failed. A SKIP (a fault
this machine cannot inject, such as a tmpfs without root) is neither. The run directory
(service logs, receiver logs as JSON lines, the SQLite stores) is kept when anything failed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import random
import shutil
import signal
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path

from chaos.scenarios import FULL, REDUCED, Context, Result, registry, run_scenario
from devtools.broker import EmbeddedBroker

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def build_parser() -> argparse.ArgumentParser:
    names = [s.name for s in registry()]
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--reduced", action="store_true", help="CI-sized faults (about 90 s)")
    parser.add_argument("--only", default="", help=f"comma list of: {', '.join(names)}")
    parser.add_argument("--seed", type=int, default=None, help="seed of every random choice")
    parser.add_argument("--outage", type=float, default=None, help="broker outage, seconds")
    parser.add_argument(
        "--bootstrap", default="", help="use this Kafka/Tansu instead of starting one"
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("WEBHOOKS_TEST_POSTGRES_URL", DEFAULT_POSTGRES),
        help="admin URL; throwaway databases are created and dropped through it",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    return parser


def print_result(result: Result) -> None:
    print(f"{result.verdict}  {result.name:<18} {result.seconds:6.1f}s  {result.title}")
    if result.report.skipped is not None:
        print(f"        skipped: {result.report.skipped}")
    for check in result.report.checks:
        print(f"        {'✓' if check.ok else '✗'} {check.what}")
    for note in result.report.notes:
        print(f"        · {note}")
    sys.stdout.flush()


async def run(args: argparse.Namespace, run_dir: Path) -> list[Result]:
    scenarios = registry()
    if args.only:
        wanted = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = sorted(set(wanted) - {s.name for s in scenarios})
        if unknown:
            raise SystemExit(f"python -m chaos: unknown scenario(s) {', '.join(unknown)}")
        scenarios = [s for s in scenarios if s.name in wanted]
    elif args.reduced:
        scenarios = [s for s in scenarios if s.reduced]
    params = REDUCED if args.reduced else FULL
    if args.outage is not None:
        params = dataclasses.replace(params, outage=args.outage)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    print(
        f"chaos: {'reduced' if args.reduced else 'full'} parameters, seed {seed}, "
        f"run dir {run_dir}",
        flush=True,
    )
    results: list[Result] = []
    with ExitStack() as stack:
        bootstrap = args.bootstrap
        if not bootstrap:
            broker = EmbeddedBroker(log_path=run_dir / "tansu.log")
            await asyncio.to_thread(broker.start)
            stack.callback(broker.stop)
            bootstrap = broker.bootstrap_servers
        ctx = Context(
            run_dir=run_dir,
            bootstrap=bootstrap,
            postgres_url=args.postgres_url,
            params=params,
            seed=seed,
        )
        for scenario in scenarios:
            result = await run_scenario(scenario, ctx)
            results.append(result)
            print_result(result)
    return results


async def main_async(args: argparse.Namespace, run_dir: Path) -> list[Result]:
    task = asyncio.current_task()
    if task is not None:  # SIGTERM unwinds like Ctrl-C: every finally block stops its children
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await run(args, run_dir)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The harness's own Kafka clients complain loudly while the broker is cut off on purpose.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    run_dir = Path(tempfile.mkdtemp(prefix="chaos-"))
    results: list[Result] = []
    interrupted = False
    try:
        results = asyncio.run(main_async(args, run_dir))
    except (KeyboardInterrupt, asyncio.CancelledError):
        interrupted = True
        print("interrupted: every child process was stopped", flush=True)
    passed = sum(1 for r in results if r.verdict == "PASS")
    failed = sum(1 for r in results if r.verdict == "FAIL") + int(interrupted)
    if failed or args.keep:
        print(f"run directory kept: {run_dir}")
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
