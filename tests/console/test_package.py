"""The console as shipped: its policy, its source rules and its place in the wheel."""

from __future__ import annotations

import tomllib
from fnmatch import fnmatch
from pathlib import Path

from dispatcher.api.routes.console import ROOT, load_files
from dispatcher.api.security import content_security_policy

REPO = Path(__file__).resolve().parents[2]


def test_frame_ancestors_can_name_origins() -> None:
    """A page that may be embedded names its origins in frame-ancestors, nothing else changes."""
    strict = content_security_policy()
    framed = content_security_policy(["https://a.example", "https://b.example"])
    assert strict.endswith("; frame-ancestors 'none'")
    assert framed == strict.replace(
        "frame-ancestors 'none'", "frame-ancestors https://a.example https://b.example"
    )


def test_no_inline_script_style_or_markup_parsing() -> None:
    """The console never parses markup or evaluates strings: no innerHTML, outerHTML,
    insertAdjacentHTML, document.write, eval or Function, no inline handlers or styles."""
    forbidden = (
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
        "new Function",
        "style=",
        "onclick=",
        "<script>",
        "<style",
    )
    for path in ROOT.rglob("*"):
        if path.suffix in {".js", ".html"}:
            text = path.read_text()
            assert [word for word in forbidden if word in text] == [], path


def test_the_wheel_ships_every_console_file() -> None:
    """Every file under dispatcher/api/console/ is in a declared package's package data, so
    the wheel and the Docker image (built from it) serve the same console as a checkout."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    data = setuptools["package-data"]
    files = [p for p in ROOT.rglob("*") if p.is_file()]
    assert files
    missing = []
    for path in files:
        package = ".".join(path.parent.relative_to(REPO).parts)
        shipped = package in setuptools["packages"] and any(
            fnmatch(path.name, pattern) for pattern in data.get(package, [])
        )
        if not shipped:
            missing.append(str(path.relative_to(REPO)))
    assert missing == []
    # ...and everything shipped is served.
    served = {
        "" if p.relative_to(ROOT).as_posix() == "index.html" else p.relative_to(ROOT).as_posix()
        for p in files
    }
    assert served == set(load_files())
