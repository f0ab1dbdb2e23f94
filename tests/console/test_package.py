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
    """pyproject's package data for dispatcher.api covers every file under its console/
    folder, so the wheel and the Docker image (built from it) serve the same console."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["dispatcher.api"]
    package = ROOT.parent
    files = [p.relative_to(package).as_posix() for p in ROOT.rglob("*") if p.is_file()]
    assert files
    missing = [f for f in files if not any(fnmatch(f, pattern) for pattern in patterns)]
    assert missing == []
    # ...and everything shipped is served.
    served = {"console/" + (name or "index.html") for name in load_files()}
    assert served == set(files)
