"""The README stays true to the code."""

from __future__ import annotations

from pathlib import Path

from dispatcher.settings import markdown_table

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_the_configuration_table_lists_every_setting_as_the_code_defines_it() -> None:
    """The README's configuration table is exactly the one generated from settings.FIELDS."""
    assert markdown_table() in README


def test_the_readme_names_both_commands() -> None:
    """`make demo` and `make test` are documented."""
    assert "`make demo`" in README
    assert "`make test`" in README
