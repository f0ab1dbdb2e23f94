"""open_store: the backend is chosen by the URL scheme of WEBHOOKS_DATABASE_URL."""

from __future__ import annotations

import pytest

from dispatcher.errors import DatabaseUrlError
from dispatcher.store import PostgresStore, SQLiteStore, open_store
from dispatcher.store.secretbox import SecretBox

BOX = SecretBox([bytes(32)])


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///webhooks.db", "webhooks.db"),
        ("sqlite:///data/webhooks.db", "data/webhooks.db"),
        ("sqlite:////var/lib/webhooks/webhooks.db", "/var/lib/webhooks/webhooks.db"),
    ],
)
def test_sqlite_urls_name_a_file_after_three_slashes(url: str, path: str) -> None:
    """Everything after `sqlite:///` is the file path: relative, or absolute with a 4th slash."""
    store = open_store(url, secret_box=BOX)
    assert isinstance(store, SQLiteStore)
    assert store.path == path


@pytest.mark.parametrize(
    "url", ["postgresql://app@db:5432/webhooks", "postgres://app:pw@db/webhooks"]
)
def test_postgres_urls_open_the_postgres_backend(url: str) -> None:
    """Both PostgreSQL schemes select PostgresStore, whose repr never shows the password."""
    store = open_store(url, secret_box=BOX)
    assert isinstance(store, PostgresStore)
    assert "pw" not in repr(store)


@pytest.mark.parametrize(
    "url", ["sqlite://:memory:", "sqlite:///", "sqlite:///wh.db?mode=ro", "sqlite:wh.db"]
)
def test_unusable_sqlite_urls_are_rejected(url: str) -> None:
    """A SQLite URL that does not name a plain file is a ValueError explaining the form."""
    with pytest.raises(DatabaseUrlError, match=r"sqlite:///relative/path\.db"):
        open_store(url, secret_box=BOX)


def test_unknown_scheme_is_rejected_without_echoing_the_url() -> None:
    """An unsupported scheme names the scheme and the accepted forms, never the credentials."""
    with pytest.raises(DatabaseUrlError, match="unsupported database URL scheme 'mysql'") as info:
        open_store("mysql://root:hunter2@db/webhooks", secret_box=BOX)
    assert "hunter2" not in str(info.value)
