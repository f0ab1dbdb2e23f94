"""The README stays true to the code."""

from __future__ import annotations

from pathlib import Path

from dispatcher.api.context import STATUS_CODES
from dispatcher.core.routing import OPERATIONAL_PREFIX
from dispatcher.settings import markdown_table

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_configuration_table_lists_every_setting_as_the_code_defines_it() -> None:
    """The README's configuration table is exactly the one generated from settings.FIELDS."""
    assert markdown_table() in README


def test_the_readme_names_both_commands() -> None:
    """`make demo` and `make test` are documented."""
    assert "`make demo`" in README
    assert "`make test`" in README


def test_the_readme_lists_every_error_code_the_api_returns() -> None:
    """Each stable code of the API, with its HTTP status, is in the README's list."""
    for code, status in STATUS_CODES.items():
        assert f"`{code}` {status}" in README, code


def test_the_readme_documents_the_webhook_opt_in_rule() -> None:
    """The operational types reach only endpoints naming them: the README says so."""
    assert f"operational `{OPERATIONAL_PREFIX}*` types" in README
