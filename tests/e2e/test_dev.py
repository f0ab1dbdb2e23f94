"""`webhooks dev` as a user runs it twice (`make dev`): the same keys and Kafka address the
second time, and `webhooks demo` refused at once while it runs on the same store."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools.broker import free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

STARTED = "Stop with Ctrl-C."


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    return {**env, "WEBHOOKS_HTTP_PORT": str(free_port())}


def _command(*argv: str) -> list[str]:
    return [sys.executable, "-m", "dispatcher", *argv]


def start_dev(cwd: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`webhooks dev` in `cwd`; returns the process and what it printed once up."""
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own command, fixed argv
            _command("dev"), cwd=cwd, env=_env(), stdout=out, stderr=subprocess.STDOUT
        )
    for _ in range(1200):  # a bound (two minutes), not a speed claim
        text = log.read_text()
        if STARTED in text:
            return process, text
        if process.poll() is not None:
            break
        time.sleep(0.1)
    stop(process)
    pytest.fail(f"webhooks dev did not start:\n{log.read_text()[-3000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:  # pragma: no cover - a hang is a failure below
        process.kill()
        process.wait()
    assert process.returncode == 0


def printed(text: str) -> tuple[str, str, str]:
    """The operator key, the organization key and the Kafka address `dev` printed."""
    operator = re.search(r"export WEBHOOKS_URL=\S+ WEBHOOKS_API_KEY=(\S+)", text)
    org = re.search(r"WEBHOOKS_URL=\S+ WEBHOOKS_API_KEY=(\S+) \\", text)
    kafka = re.search(r"Kafka:\s+(\S+),", text)
    assert operator, text
    assert org, text
    assert kafka, text
    return operator.group(1), org.group(1), kafka.group(1)


def test_dev_keeps_its_keys_and_kafka_port_and_refuses_a_demo_beside_it(tmp_path: Path) -> None:
    """The second `dev` prints the first one's keys and Kafka address (kept in a 0600 file);
    `demo` on the same store while `dev` runs exits 2 in one line naming `dev`."""
    first, text = start_dev(tmp_path, tmp_path / "dev1.log")
    try:
        demo = subprocess.run(  # noqa: S603 - our own command, fixed argv
            _command("demo"),
            cwd=tmp_path,
            env=_env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        stop(first)
    second, again = start_dev(tmp_path, tmp_path / "dev2.log")
    stop(second)

    assert demo.returncode == 2, demo.stdout + demo.stderr
    assert "Traceback" not in demo.stdout + demo.stderr
    [line] = [line for line in demo.stderr.splitlines() if line.strip()]
    assert line.startswith(f"webhooks demo: `webhooks dev` (pid {first.pid}) is running")
    assert printed(again) == printed(text)
    mode = stat.S_IMODE((tmp_path / ".webhooks-dev" / "dev.json").stat().st_mode)
    assert mode == 0o600
