"""Every mistake a new user makes gets one clear line, never a Python traceback.

Each case runs the real `webhooks` command as a child process, as a user would.
"""

from __future__ import annotations

import asyncio
import base64
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from chaos.proxy import TcpProxy
from devtools.broker import free_port
from tests.e2e.harness import service_env

KEY = base64.b64encode(os.urandom(32)).decode()


def webhooks(
    *argv: str, env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command, fixed argv
        [sys.executable, "-m", "dispatcher", *argv],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_clear_line(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert "Unclosed" not in output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["keys", "list"]])
def test_an_unsupported_database_url_is_one_line_and_exit_2(
    command: list[str], tmp_path: Path
) -> None:
    """`WEBHOOKS_DATABASE_URL=mysql://x`: the scheme is named, the URL is not repeated."""
    env = {
        "WEBHOOKS_DATABASE_URL": "mysql://root:hunter2@x/db",
        "WEBHOOKS_ENCRYPTION_KEY": KEY,
        "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    }
    done = webhooks(*command, env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_clear_line(done, "WEBHOOKS_DATABASE_URL", "unsupported database URL scheme 'mysql'")
    assert "hunter2" not in done.stderr


@pytest.mark.parametrize("command", [["serve"], ["migrate"]])
def test_a_malformed_encryption_key_is_one_line_and_exit_2(
    command: list[str], tmp_path: Path
) -> None:
    """`WEBHOOKS_ENCRYPTION_KEY=notbase64`: said once, the key itself never printed."""
    env = {
        "WEBHOOKS_DATABASE_URL": f"sqlite:///{tmp_path}/w.db",
        "WEBHOOKS_ENCRYPTION_KEY": "notbase64",
        "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
    }
    done = webhooks(*command, env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert_one_clear_line(done, "WEBHOOKS_ENCRYPTION_KEY", "not standard base64")
    assert "notbase64" not in done.stderr


def test_all_bad_values_come_in_one_message(tmp_path: Path) -> None:
    """The URL scheme, the key and the lease rule are reported together, not one per run."""
    env = {
        "WEBHOOKS_DATABASE_URL": "mysql://x",
        "WEBHOOKS_ENCRYPTION_KEY": "notbase64",
        "WEBHOOKS_LEASE": "5s",
        "WEBHOOKS_DELIVERY_TIMEOUT": "10s",
    }
    done = webhooks("migrate", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    for name in ("WEBHOOKS_DATABASE_URL", "WEBHOOKS_ENCRYPTION_KEY", "WEBHOOKS_LEASE"):
        assert name in done.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "list"],
        ["keys", "revoke", "key_x"],
        ["keys", "create", "--operator", "--scopes", "ops:read"],
        ["migrate"],
        ["secrets", "reencrypt"],
    ],
)
def test_a_store_command_without_a_database_url_names_it_and_creates_nothing(
    command: list[str], tmp_path: Path
) -> None:
    """With WEBHOOKS_DATABASE_URL unset, a command that opens the store says so in one line
    (exit 2) instead of creating ./webhooks.db wherever it runs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEBHOOKS_")}
    done = subprocess.run(  # noqa: S603 - our own command, fixed argv
        [sys.executable, "-m", "dispatcher", *command],
        env={**env, "WEBHOOKS_ENCRYPTION_KEY": KEY},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert_one_clear_line(done, "WEBHOOKS_DATABASE_URL is not set", f"webhooks {command[0]}")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", [["keys", "list"], ["keys", "revoke", "key_x"]])
def test_a_key_command_that_reads_never_creates_a_database(
    command: list[str], tmp_path: Path
) -> None:
    """`keys list` on a SQLite path where there is no database: one line, nothing created."""
    missing = tmp_path / "typo.db"
    env = {"WEBHOOKS_DATABASE_URL": f"sqlite:///{missing}", "WEBHOOKS_ENCRYPTION_KEY": KEY}
    done = webhooks(*command, env=env, cwd=tmp_path)
    assert done.returncode == 1
    assert_one_clear_line(done, f"no database at {missing}", "webhooks migrate")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.kafka
def test_publishing_an_operational_type_warns_that_it_is_opt_in(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """A webhook.* type is published with one line on stderr saying only endpoints naming it
    receive it; a catalog type is published silently."""
    env = {"WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    argv = ["publish", "--org", "org_a", "--example", "--type"]
    operational = webhooks(*argv, "webhook.test", env=env, cwd=tmp_path)
    ordinary = webhooks(*argv, "content.generated", env=env, cwd=tmp_path)
    assert operational.returncode == 0, operational.stderr
    assert operational.stdout.startswith("published ")
    assert_one_clear_line(
        operational, "webhook.test reaches only endpoints that name it in their `events`"
    )
    assert (ordinary.returncode, ordinary.stderr) == (0, "")


def test_publish_with_kafka_unreachable_fails_in_one_line(tmp_path: Path) -> None:
    """The address is named; no traceback, no "Unclosed AIOKafkaProducer"."""
    port = free_port()
    env = {"WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{port}"}
    done = webhooks(
        "publish", "--type", "webhook.test", "--org", "org_a", "--example", env=env, cwd=tmp_path
    )
    assert done.returncode == 1
    assert_one_clear_line(done, "webhooks publish:", f"127.0.0.1:{port}")


@pytest.mark.kafka
def test_dev_on_a_busy_port_names_the_port_and_the_setting(tmp_path: Path) -> None:
    """`webhooks dev` (the embedded stack) with WEBHOOKS_HTTP_PORT taken: one line, exit 2."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = webhooks("dev", env={"WEBHOOKS_HTTP_PORT": str(port)}, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stdout + done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("webhooks:")]
    assert f"127.0.0.1:{port}" in line
    assert "WEBHOOKS_HTTP_PORT" in line


def test_serve_on_a_busy_port_names_the_port_and_the_setting(tmp_path: Path) -> None:
    """Another process holds WEBHOOKS_HTTP_PORT: one line naming both, exit 2."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        env = {
            "WEBHOOKS_DATABASE_URL": f"sqlite:///{tmp_path}/w.db",
            "WEBHOOKS_ENCRYPTION_KEY": KEY,
            "WEBHOOKS_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9",
            "WEBHOOKS_HTTP_PORT": str(port),
            "WEBHOOKS_LOG_LEVEL": "error",
        }
        done = webhooks("serve", env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stdout + done.stderr
    [line] = [line for line in done.stderr.splitlines() if line.startswith("webhooks:")]
    assert f"127.0.0.1:{port}" in line
    assert "WEBHOOKS_HTTP_PORT" in line


def spawn_serve(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m dispatcher serve` as a real child process, its output in `log`."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dispatcher", "serve"],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _readyz(session: aiohttp.ClientSession, url: str) -> tuple[int, dict[str, object]]:
    async with session.get(f"{url}/readyz") as response:
        return response.status, await response.json()


@pytest.mark.kafka
@pytest.mark.slow
async def test_serve_waits_out_an_unreachable_kafka_and_says_why(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    """Kafka down at start: `serve` keeps its API up, `/readyz` names the address and the
    error, it retries with back-off, becomes ready once the broker answers, and SIGTERM
    stops it cleanly — no traceback at any point."""
    kafka_port = free_port()
    http_port = free_port()
    env = service_env(
        f"sqlite:///{tmp_path}/w.db",
        f"127.0.0.1:{kafka_port}",
        WEBHOOKS_HTTP_PORT=str(http_port),
    )
    url = f"http://127.0.0.1:{http_port}"
    log = tmp_path / "serve.log"
    process = spawn_serve(env, log)
    try:
        async with aiohttp.ClientSession() as session:
            status, body = 0, dict[str, object]()
            for _ in range(200):
                assert process.poll() is None, log.read_text()
                try:
                    status, body = await _readyz(session, url)
                    break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            assert status == 503
            checks = body["checks"]
            assert isinstance(checks, dict)
            assert str(checks["kafka"]).startswith(f"connecting to 127.0.0.1:{kafka_port}: ")
            # The broker appears on that address: the next retry joins.
            target = int(kafka_bootstrap.rsplit(":", 1)[1])
            async with TcpProxy(target_port=target, port=kafka_port):
                for _ in range(600):
                    status, body = await _readyz(session, url)
                    if status == 200:
                        break
                    await asyncio.sleep(0.1)
                assert status == 200, body
                process.send_signal(signal.SIGTERM)
                code = await asyncio.to_thread(process.wait, 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    output = log.read_text()
    assert code == 0, output[-3000:]
    assert "Traceback" not in output
    assert "Unclosed" not in output
    assert output.count("cannot reach Kafka; retrying") >= 1
