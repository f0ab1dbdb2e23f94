"""Settings: `WEBHOOKS_*` parsed once, every bad variable reported at once."""

from __future__ import annotations

import base64
import ipaddress
import os
from pathlib import Path

import pytest

from dispatcher.errors import SettingsError
from dispatcher.setting_values import parse_duration, usable_cores
from dispatcher.settings import FIELDS, Settings


def test_defaults_match_the_design() -> None:
    """With no variables set, the documented defaults apply (docs/design.md §4–§5)."""
    settings = Settings.from_env({})
    assert settings.kafka_topics == ("layers.events",)
    assert settings.kafka_group == "layers-webhooks"
    assert settings.retry_schedule == (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
    assert settings.delivery_timeout == 15
    assert settings.max_event_bytes == 256 * 1024
    assert settings.allow_private_networks == ()
    assert settings.disable_after == 5 * 86400
    assert settings.retention == 30 * 86400


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("5m", 300), ("2h", 7200), ("5d", 432000), ("250ms", 0.25), ("1.5", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    """Durations accept ms, s, m, h, d suffixes and bare seconds."""
    assert parse_duration(text) == seconds


def test_every_bad_variable_is_reported_at_once() -> None:
    """Three bad variables give one error naming all three, with their values."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "WEBHOOKS_RETRY_SCHEDULE": "5s,soon",
                "WEBHOOKS_HTTP_PORT": "99999",
                "WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "127.0.0.1/8",
            }
        )
    problems = caught.value.problems
    assert [p.split("=")[0] for p in problems] == [
        "WEBHOOKS_RETRY_SCHEDULE",
        "WEBHOOKS_ALLOW_PRIVATE_NETWORKS",
        "WEBHOOKS_HTTP_PORT",
    ]
    assert "'soon' is not a duration" in problems[0]


def test_private_network_allow_list_parses_cidrs() -> None:
    """The escape hatch is a CIDR list."""
    settings = Settings.from_env({"WEBHOOKS_ALLOW_PRIVATE_NETWORKS": "127.0.0.0/8, ::1/128"})
    assert settings.allow_private_networks == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )


def test_the_lease_must_outlive_an_attempt() -> None:
    """A lease shorter than the delivery deadline would let two replicas send at once."""
    with pytest.raises(SettingsError, match="WEBHOOKS_LEASE"):
        Settings.from_env({"WEBHOOKS_LEASE": "10s", "WEBHOOKS_DELIVERY_TIMEOUT": "15s"})


def test_serve_requires_a_broker_and_an_encryption_key() -> None:
    """`serve` refuses to start without WEBHOOKS_ENCRYPTION_KEY and a Kafka cluster."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({}).require_production()
    assert len(caught.value.problems) == 2


def test_the_encryption_key_never_appears_in_the_repr() -> None:
    """Settings can be logged without leaking the key."""
    key = base64.b64encode(b"secret-key-material-32-bytes-ok!").decode()
    settings = Settings.from_env({"WEBHOOKS_ENCRYPTION_KEY": key})
    assert key[:12] not in repr(settings)
    assert "<redacted>" in repr(settings)


def test_every_bad_value_and_rule_is_reported_at_once_without_echoing_secrets() -> None:
    """The database URL, the key, a duration and the lease-versus-timeout rule: one error
    naming all four; neither the key nor the URL's password is repeated."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env(
            {
                "WEBHOOKS_DATABASE_URL": "mysql://root:hunter2@db/x",
                "WEBHOOKS_ENCRYPTION_KEY": "notbase64!",
                "WEBHOOKS_POLL_INTERVAL": "soon",
                "WEBHOOKS_LEASE": "5s",
                "WEBHOOKS_DELIVERY_TIMEOUT": "10s",
            }
        )
    problems = caught.value.problems
    assert [p.split(":")[0].split("=")[0] for p in problems] == [
        "WEBHOOKS_DATABASE_URL",
        "WEBHOOKS_ENCRYPTION_KEY",
        "WEBHOOKS_POLL_INTERVAL",
        "WEBHOOKS_LEASE (5s) must be longer than WEBHOOKS_DELIVERY_TIMEOUT (10s)",
    ]
    assert "unsupported database URL scheme 'mysql'" in problems[0]
    assert "not standard base64" in problems[1]
    assert "hunter2" not in str(caught.value)
    assert "notbase64" not in str(caught.value)


def test_every_field_is_a_webhooks_variable_with_documentation() -> None:
    """Each setting is named WEBHOOKS_* and documented (the README table comes from FIELDS)."""
    assert all(f.env.startswith("WEBHOOKS_") and f.doc for f in FIELDS)
    assert len({f.env for f in FIELDS}) == len(FIELDS)


def test_workers_default_to_the_usable_cores() -> None:
    """`auto` workers are the cores usable, on either store; a number is that."""
    postgres = {"WEBHOOKS_DATABASE_URL": "postgresql://db/webhooks"}
    assert Settings.from_env(postgres).workers == usable_cores()
    assert Settings.from_env({**postgres, "WEBHOOKS_WORKERS": "3"}).workers == 3
    assert Settings.from_env({}).workers == usable_cores()  # sqlite:///webhooks.db
    assert Settings.from_env({"WEBHOOKS_WORKERS": "1"}).workers == 1


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5"])
def test_a_bad_worker_count_is_reported(value: str) -> None:
    """WEBHOOKS_WORKERS is `auto` or a positive integer, and says so."""
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({"WEBHOOKS_WORKERS": value})
    assert caught.value.problems == [
        f"WEBHOOKS_WORKERS={value!r}: {value!r} must be `auto` or a positive integer"
    ]


@pytest.mark.parametrize(
    ("limit", "cores"), [("max 100000", 2), ("150000 100000", 2), ("50000 100000", 1)]
)
def test_auto_workers_respect_a_container_cpu_limit(tmp_path: Path, limit: str, cores: int) -> None:
    """A cgroup v2 CPU quota bounds `auto` (a Kubernetes CPU limit of 1.5 → 2 workers)."""
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(limit + "\n")
    assert usable_cores(str(cpu_max)) == min(cores, len(os.sched_getaffinity(0)))


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("", ""),
        ("https://webhooks.example.com/", "https://webhooks.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("https://example.com/webhooks/", "https://example.com/webhooks"),
    ],
)
def test_the_public_url_is_a_bare_http_url(text: str, url: str) -> None:
    """WEBHOOKS_PUBLIC_URL is empty or an http(s) URL, kept without its trailing slash."""
    assert Settings.from_env({"WEBHOOKS_PUBLIC_URL": text}).public_url == url


@pytest.mark.parametrize(
    "text",
    ["webhooks.example.com", "ftp://example.com", "https://example.com/?a=1", "https://u@h.com"],
)
def test_a_public_url_with_a_query_user_or_other_scheme_is_refused(text: str) -> None:
    """A public URL that is not a plain http(s) URL is reported by name."""
    with pytest.raises(SettingsError, match="WEBHOOKS_PUBLIC_URL"):
        Settings.from_env({"WEBHOOKS_PUBLIC_URL": text})
