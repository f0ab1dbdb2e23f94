"""The service image: hadolint-clean, slim, non-root, and its builder steps work without Docker.

No Docker engine runs here, so the Dockerfile is checked by reading it (its instructions and
build context) and by running what can run outside a container: the HEALTHCHECK command
against a real HTTP server, and the builder's wheel build on the same files the context sends.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from dispatcher.settings import FIELDS
from tests.deploy.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
UID = 10001


@dataclass(frozen=True, slots=True)
class Instruction:
    stage: str  # the `AS` name of the stage it belongs to ("" before the first FROM)
    keyword: str
    arguments: str


def instructions(text: str) -> list[Instruction]:
    """The Dockerfile's instructions: continuations joined, comments and directives dropped."""
    found: list[Instruction] = []
    stage = ""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        pending = f"{pending} {line}".strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        keyword, _, arguments = pending.partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage = arguments.split()[-1] if " AS " in arguments.upper() else arguments
        found.append(Instruction(stage, keyword.upper(), arguments.strip()))
    return found


def in_stage(stage: str, keyword: str) -> list[str]:
    return [
        i.arguments
        for i in instructions(DOCKERFILE.read_text())
        if (i.stage, i.keyword) == (stage, keyword)
    ]


def env_of(stage: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for arguments in in_stage(stage, "ENV"):
        for name, value in re.findall(r'(\w+)=("[^"]*"|\S+)', arguments):
            pairs[name] = value.strip('"')
    return pairs


# -- .dockerignore, with Docker's rules: the last matching pattern wins, `!` re-includes, a
# pattern matching a directory covers everything below it.


def _pattern(glob: str) -> re.Pattern[str]:
    regex = ""
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            regex, i = regex + ".*", i + 2
        elif glob[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif glob[i] == "?":
            regex, i = regex + "[^/]", i + 1
        elif glob[i] == "[":
            end = glob.index("]", i)
            regex, i = regex + glob[i : end + 1], end + 1
        else:
            regex, i = regex + re.escape(glob[i]), i + 1
    return re.compile(regex)


@dataclass(frozen=True, slots=True)
class IgnoreRule:
    negated: bool
    glob: str
    pattern: re.Pattern[str]


def ignore_rules() -> list[IgnoreRule]:
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        glob = line.lstrip("!").strip("/")
        rules.append(IgnoreRule(line.startswith("!"), glob, _pattern(glob)))
    return rules


def excluded(path: str, rules: list[IgnoreRule]) -> bool:
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for rule in rules:
        if any(rule.pattern.fullmatch(prefix) for prefix in prefixes):
            verdict = not rule.negated
    return verdict


def build_context(destination: Path) -> list[str]:
    """Copy what `docker build .` would send into `destination`; list it (relative paths)."""
    rules = ignore_rules()
    sent = []
    for folder, dirs, files in os.walk(REPO):
        base = "" if Path(folder) == REPO else Path(folder).relative_to(REPO).as_posix()
        # Skip walking excluded folders (.venv, .git…) unless a `!` rule reaches inside them.
        dirs[:] = [
            d
            for d in dirs
            if not excluded(f"{base}/{d}".lstrip("/"), rules)
            or any(r.negated and r.glob.startswith(f"{base}/{d}/".lstrip("/")) for r in rules)
        ]
        for name in sorted(files):
            relative = f"{base}/{name}".lstrip("/")
            if not excluded(relative, rules):
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(Path(folder) / name, target)
                sent.append(relative)
    return sorted(sent)


# -- lint -------------------------------------------------------------------------------------


def test_hadolint_reports_nothing(hadolint: Path, tmp_path: Path) -> None:
    """hadolint finds no error, warning, info or style issue in the Dockerfile."""
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [str(hadolint), "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # no project or user .hadolint.yaml can relax the rules
        env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        check=False,
    )
    assert json.loads(done.stdout) == [], done.stdout
    assert done.returncode == 0


def test_every_hadolint_ignore_is_justified() -> None:
    """Each `# hadolint ignore=` pragma follows a comment line saying why."""
    lines = DOCKERFILE.read_text().splitlines()
    unexplained = [
        n + 1
        for n, line in enumerate(lines)
        if "hadolint ignore=" in line
        and (n == 0 or not lines[n - 1].lstrip().startswith("#") or "hadolint" in lines[n - 1])
    ]
    assert unexplained == []


# -- the two stages ---------------------------------------------------------------------------


def test_both_stages_use_the_slim_python_base() -> None:
    """The builder and the runtime stage are the same python:3.11-slim, the runtime one last."""
    parsed = instructions(DOCKERFILE.read_text())
    assert [i.arguments for i in parsed if i.keyword == "ARG" and i.stage == ""] == [
        "PYTHON_IMAGE=python:3.11-slim"
    ]
    assert [i.arguments for i in parsed if i.keyword == "FROM"] == [
        "${PYTHON_IMAGE} AS builder",
        "${PYTHON_IMAGE} AS runtime",
    ]
    assert parsed[-1].stage == "runtime"


def test_builder_installs_wheels_of_verifier_and_service_without_dev_extras() -> None:
    """The builder wheels ./verifier and the service and installs runtime dependencies only."""
    [install, smoke] = in_stage("builder", "RUN")
    assert "pip wheel --no-deps --wheel-dir /wheels ./verifier ." in install
    assert "--only-binary=:all:" in install  # prebuilt wheels only: no compiler needed
    runs = [i.arguments for i in instructions(DOCKERFILE.read_text()) if i.keyword == "RUN"]
    assert [run for run in runs if "[dev]" in run or "requirements" in run] == []
    assert "webhooks migrate" in smoke


def test_runtime_stage_copies_the_virtualenv_and_installs_nothing() -> None:
    """The runtime stage copies /opt/venv from the builder and runs no installer or compiler."""
    assert in_stage("runtime", "COPY") == ["--from=builder /opt/venv /opt/venv"]
    [user_setup] = in_stage("runtime", "RUN")
    assert not re.search(r"\b(pip|apt-get|apt|gcc|cc|make)\b", user_setup)


def test_runtime_runs_webhooks_serve_as_a_fixed_non_root_user() -> None:
    """USER is the numeric 10001, ENTRYPOINT webhooks, CMD serve; the service port is exposed."""
    assert in_stage("runtime", "USER") == [f"{UID}:{UID}"]
    assert f"--uid {UID} --gid {UID}" in in_stage("runtime", "RUN")[0]
    assert in_stage("runtime", "ENTRYPOINT") == ['["webhooks"]']
    assert in_stage("runtime", "CMD") == ['["serve"]']
    port = next(f.default for f in FIELDS if f.env == "WEBHOOKS_HTTP_PORT")
    assert in_stage("runtime", "EXPOSE") == [port]


def test_runtime_environment_suits_a_container() -> None:
    """No bytecode writes, unbuffered logs, the venv first on PATH, listening on all interfaces."""
    env = env_of("runtime")
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["WEBHOOKS_HTTP_HOST"] == "0.0.0.0"
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert in_stage("runtime", "WORKDIR") == ["/var/lib/webhooks"]


def test_runtime_carries_oci_labels_with_the_service_version() -> None:
    """The OCI labels are present and ARG VERSION defaults to pyproject.toml's version."""
    labels = " ".join(in_stage("runtime", "LABEL"))
    keys = set(re.findall(r"(org\.opencontainers\.image\.[\w.]+)=", labels))
    assert keys >= {
        f"org.opencontainers.image.{k}"
        for k in ("title", "description", "version", "revision", "licenses", "vendor")
    }
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert f"VERSION={version}" in in_stage("runtime", "ARG")


# -- HEALTHCHECK, run for real ----------------------------------------------------------------


class _Health(BaseHTTPRequestHandler):
    status: ClassVar[int] = 200
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test asserts on the recorded paths instead."""


@pytest.fixture
def health_server() -> Iterator[tuple[ThreadingHTTPServer, type[_Health]]]:
    handler = type("Health", (_Health,), {"status": 200, "paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    """Run the image's HEALTHCHECK command with this interpreter, as the image's env would."""
    [line] = in_stage("runtime", "HEALTHCHECK")
    options, _, command = line.partition("CMD ")
    argv = json.loads(command)  # exec form must be valid JSON, or Docker silently uses a shell
    assert argv[0] == "python"
    assert "--timeout=5s" in options
    env = {
        "PATH": os.environ.get("PATH", ""),
        "WEBHOOKS_HTTP_HOST": "0.0.0.0",
        "WEBHOOKS_HTTP_PORT": str(port),
        "http_proxy": "http://127.0.0.1:9",  # the check must ignore proxies
        "HTTP_PROXY": "http://127.0.0.1:9",
    }
    return subprocess.run(  # noqa: S603 - the Dockerfile's own command
        [sys.executable, *argv[1:]],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
        check=False,
    )


def test_healthcheck_passes_when_healthz_answers(
    health_server: tuple[ThreadingHTTPServer, type[_Health]],
) -> None:
    """The HEALTHCHECK command exits 0 after a 200 from GET /healthz on WEBHOOKS_HTTP_PORT."""
    server, handler = health_server
    done = healthcheck(server.server_address[1])
    assert (done.returncode, handler.paths) == (0, ["/healthz"]), done.stderr


def test_healthcheck_fails_on_an_unhealthy_answer(
    health_server: tuple[ThreadingHTTPServer, type[_Health]],
) -> None:
    """The HEALTHCHECK command exits non-zero when /healthz answers 503."""
    server, handler = health_server
    handler.status = 503
    done = healthcheck(server.server_address[1])
    assert done.returncode == 1
    assert "HTTP Error 503" in done.stderr


def test_healthcheck_fails_when_nothing_listens(
    health_server: tuple[ThreadingHTTPServer, type[_Health]],
) -> None:
    """The HEALTHCHECK command exits non-zero when the port refuses connections."""
    server, _ = health_server
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    assert healthcheck(port).returncode == 1


# -- build context and wheels -----------------------------------------------------------------


def test_build_context_sends_only_what_the_builder_copies(tmp_path: Path) -> None:
    """The context holds packaging files and sources: no venv, git, tests, caches or databases."""
    sent = build_context(tmp_path)
    assert {path.split("/")[0] for path in sent} == {
        "pyproject.toml",
        "README.md",
        "dispatcher",
        "verifier",
        "schemas",
    }
    rules = ignore_rules()
    for leftover in (".venv/bin/python", ".git/HEAD", "tests/conftest.py", "webhooks.db", ".env"):
        assert excluded(leftover, rules), leftover
    for leftover in (
        "dispatcher/__pycache__/cli.cpython-311.pyc",
        "verifier/build/lib/x.py",
        "dispatcher/x.db",
    ):
        assert excluded(leftover, rules), leftover
    sources = [a.split()[0] for a in in_stage("builder", "COPY")] + ["README.md"]
    assert [s for s in sources if excluded(s, rules) or not (REPO / s).exists()] == []


@pytest.mark.slow
def test_builder_wheels_carry_the_migrations_and_the_event_schemas(tmp_path: Path) -> None:
    """The builder's wheels (same context, same COPY layout) hold the migrations and schemas."""
    context, source, wheels = tmp_path / "context", tmp_path / "src", tmp_path / "wheels"
    build_context(context)
    for arguments in in_stage("builder", "COPY"):  # COPY <src>... <dest> relative to WORKDIR /src
        *sources, destination = arguments.split()
        for item in sources:
            origin, target = context / item, source / destination
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
    done = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "--wheel-dir",
            str(wheels),
            "./verifier",
            ".",
        ],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    [service] = wheels.glob("layers_webhooks_dispatcher-*.whl")
    [verifier] = wheels.glob("layers_webhooks-*.whl")
    with zipfile.ZipFile(service) as wheel:
        shipped = set(wheel.namelist())
    migrations = {
        f"dispatcher/{p.relative_to(REPO / 'dispatcher').as_posix()}"
        for p in (REPO / "dispatcher" / "store").rglob("*.sql")
    }
    schemas = {
        f"dispatcher/schemas/{p.relative_to(REPO / 'schemas').as_posix()}"
        for p in (REPO / "schemas").rglob("*.json")
    }
    assert migrations
    assert sorted(migrations - shipped) == []
    assert sorted(schemas - shipped) == []
    with zipfile.ZipFile(verifier) as wheel:
        assert "layers_webhooks/py.typed" in wheel.namelist()
