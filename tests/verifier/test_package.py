"""The distribution: a pinned public API, no runtime dependencies, stdlib-only imports."""

from __future__ import annotations

import doctest
import importlib.metadata
import json
import subprocess
import sys
import tomllib

import layers_webhooks
import layers_webhooks.webhook
import pytest

from .material import REPO

EXPECTED_API = [
    "DuplicateMessageError",
    "InMemorySeenIds",
    "InvalidPayloadError",
    "InvalidSecretError",
    "MalformedHeaderError",
    "MissingHeaderError",
    "NoMatchingSignatureError",
    "SeenIdStore",
    "TimestampTooNewError",
    "TimestampTooOldError",
    "Webhook",
    "WebhookVerificationError",
    "__version__",
]

# Site-packages stay importable (aiohttp, cryptography, ... are installed here), so a stray
# import, even a guarded `try: import x`, would load and show up in the difference.
IMPORT_PROBE = """
import sys
before = set(sys.modules)
sys.path.insert(0, {path!r})
{code}
outside = sorted(
    name for name in set(sys.modules) - before
    if name.partition(".")[0] not in sys.stdlib_module_names
    and name.partition(".")[0] != "layers_webhooks"
)
import json
print(json.dumps(outside))
"""


def test_public_api_is_pinned() -> None:
    """__all__ is exactly the documented API, and every name in it resolves."""
    assert layers_webhooks.__all__ == EXPECTED_API
    assert all(hasattr(layers_webhooks, name) for name in EXPECTED_API)


def test_every_public_name_is_documented() -> None:
    """Every exported class carries a docstring."""
    undocumented = [
        name
        for name in EXPECTED_API
        if isinstance(getattr(layers_webhooks, name), type)
        and not getattr(layers_webhooks, name).__doc__
    ]
    assert undocumented == []


@pytest.mark.parametrize(
    "code",
    [
        "import layers_webhooks",
        "import layers_webhooks.aiohttp",
        # a whole verification, with whsec_ keys only: nothing is imported lazily either
        "from layers_webhooks import Webhook, InMemorySeenIds\n"
        "wh = Webhook('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', seen_ids=InMemorySeenIds())\n"
        "h = {'webhook-id': 'msg_1', 'webhook-timestamp': '1614265330'}\n"
        "h['webhook-signature'] = wh.sign_header('msg_1', 1614265330, b'{}')\n"
        "assert wh.verify_at(b'{}', h, 1614265330) == {}",
    ],
    ids=["package", "aiohttp-helper", "verify"],
)
def test_importing_loads_only_the_standard_library(code: str) -> None:
    """In a fresh interpreter, importing and using the verifier loads only stdlib modules."""
    probe = IMPORT_PROBE.format(path=str(REPO / "verifier"), code=code)
    result = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-I", "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout) == []


def test_the_import_probe_sees_third_party_modules() -> None:
    """Control: the same probe does report a third-party import (here aiohttp)."""
    probe = IMPORT_PROBE.format(path=str(REPO / "verifier"), code="import aiohttp")
    result = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-I", "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "aiohttp" in json.loads(result.stdout)


def test_the_distribution_has_no_runtime_dependencies() -> None:
    """`pip install ./verifier` pulls nothing; cryptography only comes with the ed25519 extra."""
    project = tomllib.loads((REPO / "verifier" / "pyproject.toml").read_text())["project"]
    assert project["name"] == "layers-webhooks"
    assert project["dependencies"] == []
    assert project["optional-dependencies"] == {"ed25519": ["cryptography>=43"]}
    installed = importlib.metadata.requires("layers-webhooks") or []
    assert all('extra == "ed25519"' in requirement for requirement in installed)


def test_version_matches_the_distribution() -> None:
    """__version__ is the version in verifier/pyproject.toml."""
    project = tomllib.loads((REPO / "verifier" / "pyproject.toml").read_text())["project"]
    assert layers_webhooks.__version__ == project["version"]


def test_docstring_examples_run() -> None:
    """The usage examples in the modules' docstrings are correct (doctest)."""
    results = [doctest.testmod(module) for module in (layers_webhooks.webhook,)]
    assert sum(result.attempted for result in results) >= 2
    assert sum(result.failed for result in results) == 0


def test_the_package_is_typed() -> None:
    """py.typed ships with the package so partners' type checkers use our annotations."""
    assert (REPO / "verifier" / "layers_webhooks" / "py.typed").is_file()
