"""What `webhooks dev` and `webhooks demo` keep in `.webhooks-dev/` between runs.

- `encryption.key`: the embedded stack's WEBHOOKS_ENCRYPTION_KEY (mode 0600).
- `dev.json` (mode 0600): the dev stack's operator key and its organization's key, and its
  Kafka port, so that restarting `make dev` prints the same exports. A stored key is reused
  only while the store still holds it unrevoked; otherwise a new one is minted.
- `stack.lock`: held (flock) by the `dev` or `demo` running on this directory's store, with
  its pid and command inside. Two embedded stacks on one SQLite store would claim each
  other's deliveries, so the second refuses at once in one line instead of timing out. The
  operating system releases the lock when the holder exits, however it exits.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from dispatcher.clock import new_id, random_bytes
from dispatcher.core.models import Organization
from dispatcher.core.scopes import (
    KEY_ENTROPY_BYTES,
    OPERATOR_SCOPES,
    ORG_SCOPES,
    hash_key,
    new_api_key,
)
from dispatcher.errors import UsageError
from dispatcher.store import Store

STATE_DIR = Path(".webhooks-dev")
DEV_ORG = "org_dev"
_PRIVATE = 0o600


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, whatever the umask (replacing it whole)."""
    partial = path.with_name(path.name + ".new")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _PRIVATE)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    partial.chmod(_PRIVATE)
    partial.replace(path)


def encryption_key(state: Path) -> str:
    """The embedded stack's encryption key, made once and kept."""
    state.mkdir(parents=True, exist_ok=True)
    key_file = state / "encryption.key"
    if not key_file.exists():
        write_private(key_file, base64.b64encode(os.urandom(32)).decode())
    return key_file.read_text().strip()


@contextlib.contextmanager
def stack_lock(state: Path, command: str) -> Iterator[None]:
    """Hold `stack.lock` while `command` runs; raise UsageError (exit 2) if another embedded
    stack holds it."""
    state.mkdir(parents=True, exist_ok=True)
    path = state / "stack.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, _PRIVATE)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = path.read_text().split() or ["?", "dev"]
            pid, other = holder[0], holder[-1]
            raise UsageError(
                f"`webhooks {other}` (pid {pid}) is running on the store in {state}/: "
                f"stop it first, or run `{command}` from another directory"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {command}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock


def _saved(state: Path) -> dict[str, Any]:
    try:
        saved = orjson.loads((state / "dev.json").read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return saved if isinstance(saved, dict) else {}


def _save(state: Path, **values: Any) -> None:
    write_private(state / "dev.json", orjson.dumps({**_saved(state), **values}).decode())


def _port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def kafka_port(state: Path) -> int | None:
    """The embedded broker's port of the previous `dev`, if it is free now (else None: the
    broker takes any free one)."""
    port = _saved(state).get("kafkaPort")
    return port if isinstance(port, int) and 0 < port < 65536 and _port_free(port) else None


def remember_kafka_port(state: Path, port: int) -> None:
    _save(state, kafkaPort=port)


async def _usable(store: Store, secret: object) -> bool:
    if not isinstance(secret, str) or not secret:
        return False
    record = await store.api_key_by_hash(hash_key(secret))
    return record is not None and record.revoked_at is None


async def dev_keys(store: Store, state: Path) -> tuple[str, str]:
    """The dev stack's operator key and its organization's key: the ones kept in `dev.json`
    while the store still holds them unrevoked, else new ones (kept for next time)."""
    await store.put_organization(Organization(id=DEV_ORG))
    saved = _saved(state)
    keys: dict[str, str] = {}
    for field, org, scopes, name in (
        ("operatorKey", None, OPERATOR_SCOPES, "dev operator"),
        ("orgKey", DEV_ORG, ORG_SCOPES, "dev"),
    ):
        if await _usable(store, saved.get(field)):
            keys[field] = saved[field]
            continue
        record, secret = new_api_key(
            organization_id=org,
            scopes=scopes,
            name=name,
            now=datetime.now(UTC),
            key_id=new_id("key"),
            entropy=random_bytes(KEY_ENTROPY_BYTES),
        )
        await store.create_api_key(record, hash_key(secret))
        keys[field] = secret
    if any(keys[field] != saved.get(field) for field in keys):
        _save(state, **keys)
    return keys["operatorKey"], keys["orgKey"]
