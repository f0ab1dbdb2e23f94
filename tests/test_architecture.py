"""The architecture of docs/architecture.md, checked: layers, a pure core, small modules,
and documentation that points only into the repository."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DISPATCHER = REPO / "dispatcher"
MAX_LINES = 400
# The documents outside the repository, spelled so that this file does not cite them itself.
OUTSIDE = ("DESIGN" + ".md", "STYLE" + ".md", "../" + "shared")


def _tracked(*patterns: str) -> list[Path]:
    git = ["git", "ls-files", "--cached", "--others", "--exclude-standard", *patterns]
    out = subprocess.run(  # noqa: S603 - fixed argv, no shell
        git, cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    return [REPO / line for line in out.splitlines() if (REPO / line).is_file()]


def test_the_import_contracts_hold() -> None:
    """`lint-imports` (the layers, a core without I/O, no cycles) passes, in CI too."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(  # noqa: S603 - the venv's own lint-imports
        [str(lint)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _calls(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            names.append(node.func.attr)
    return names


@pytest.mark.parametrize("path", sorted((DISPATCHER / "core").glob("*.py")), ids=lambda p: p.name)
def test_the_core_reads_no_clock_and_no_entropy(path: Path) -> None:
    """What an import graph cannot see: `datetime.now()`, `os.urandom()`, `os.getpid()`…
    time and randomness are parameters of the core, never read by it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    forbidden = {"now", "utcnow", "today", "urandom", "getpid", "getenv", "token_bytes"}
    assert sorted(set(_calls(tree)) & forbidden) == []
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert "os" not in imported


def test_no_module_in_dispatcher_exceeds_400_lines() -> None:
    """Modules stay small enough to read in one sitting (docs/architecture.md)."""
    sizes = {
        str(path.relative_to(REPO)): len(path.read_text(encoding="utf-8").splitlines())
        for path in _tracked("dispatcher/*.py", "dispatcher/**/*.py")
    }
    assert len(sizes) > 40  # the whole package was looked at
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}


def test_nothing_cites_a_file_outside_the_repository() -> None:
    """Code, schemas and docs cite docs/design.md and docs/architecture.md, never a design or
    style document outside the repository."""
    offenders = []
    for path in _tracked():
        if path.suffix not in {".py", ".md", ".yaml", ".yml", ".toml", ".json", ".txt"}:
            continue
        if path == Path(__file__).resolve() or "bench/results" in str(path):
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for needle in OUTSIDE:
            if needle in text:
                offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []
    assert (REPO / "docs" / "design.md").is_file()
    assert (REPO / "docs" / "architecture.md").is_file()


def test_the_architecture_document_names_every_package() -> None:
    """docs/architecture.md lists each package of dispatcher/ that exists."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    packages = sorted(
        p.name for p in DISPATCHER.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    )
    assert packages == ["api", "core", "engine", "ops", "store"]
    for name in packages:
        assert f"  {name}/" in text
