"""The floors of the house (README, "How it is built") hold: import-linter checks the contracts in
pyproject.toml, and the same check fails on a copy where a lower floor imports a higher one.

Tests keep their shared pieces in support modules (helpers.py, world.py, mca.testing), never in
another test module: no module under tests/ imports a `test_*` module, checked the same way."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("mca", "state", "ingest", "mcp_tools", "learn", "measure", "agent", "console", "demo")
LINT = str(Path(sys.executable).with_name("lint-imports"))


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [LINT, "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=120
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    tree.mkdir()
    shutil.copy(ROOT / "pyproject.toml", tree)
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tree / package, ignore=shutil.ignore_patterns("__pycache__"))
    return tree


def test_the_floors_hold() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("mca/db.py", "import agent.worker", "The core (mca) imports no package"),
        ("ingest/formats.py", "from mcp_tools import guard", "Packages import only the floors below them"),
        ("state/context.py", "import agent.loop", "Packages import only the floors below them"),
        ("agent/worker.py", "import demo.seed.world", "Production code never imports the demo package"),
        ("agent/worker.py", "import console.web", "Packages import only the floors below them"),
        ("console/web.py", "import demo.seed.world", "Production code never imports the demo package"),
    ],
)
def test_a_lower_floor_importing_a_higher_one_is_refused(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = _copy(tmp_path)
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}  # deliberately broken\n")
    result = _lint(tree)
    assert result.returncode != 0
    assert contract in result.stdout
    assert "BROKEN" in result.stdout


def _imported(node: ast.Import | ast.ImportFrom, package: tuple[str, ...], tree: Path) -> list[str]:
    """The modules `node` imports; `package` is the importing file's, for relative imports."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = list(package[: len(package) - node.level + 1]) if node.level else []
    module = ".".join([*base, *([node.module] if node.module else [])])
    # `from tests.agent import test_worker` imports the module test_worker, not a name in a module.
    folder = tree.joinpath(*module.split("."))
    return [module, *(f"{module}.{a.name}" for a in node.names if (folder / f"{a.name}.py").is_file())]


def imports_of_test_modules(tree: Path) -> list[str]:
    """Each `file:line imports module` where a module under tree/tests imports a test module."""
    found = []
    for path in sorted((tree / "tests").rglob("*.py")):
        relative = path.relative_to(tree)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.Import | ast.ImportFrom):
                continue
            for module in _imported(node, relative.parent.parts, tree):
                parts = module.split(".")
                if parts[0] == "tests" and parts[-1].startswith("test_"):
                    found.append(f"{relative}:{node.lineno} imports {module}")
    return found


def test_no_test_module_imports_another() -> None:
    assert imports_of_test_modules(ROOT) == []


@pytest.mark.parametrize(
    ("module", "line", "imported"),
    [
        (
            "tests/mcp_tools/test_rejudge.py",
            "from tests.mcp_tools.test_dispatch import SMS",
            "mcp_tools.test_dispatch",
        ),
        ("tests/agent/crash_worker.py", "import tests.agent.test_worker", "agent.test_worker"),
        ("tests/agent/test_rules_brain.py", "from tests.agent import test_injection", "agent.test_injection"),
        ("tests/mca/test_contact_stats.py", "from .test_views import conn", "mca.test_views"),
        ("tests/state/test_attribution_views.py", "from ..mca.test_views import conn", "mca.test_views"),
    ],
)
def test_a_test_module_importing_another_is_named(
    tmp_path: Path, module: str, line: str, imported: str
) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "tests", tree / "tests", ignore=shutil.ignore_patterns("__pycache__", "vendor"))
    target = tree / module
    target.write_text(target.read_text() + f"\n{line}  # deliberately broken\n")
    [found] = imports_of_test_modules(tree)
    assert found.startswith(f"{module}:") and found.endswith(f" imports tests.{imported}")
