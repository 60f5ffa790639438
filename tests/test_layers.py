"""The floors of the house (README, "How it is built") hold: import-linter checks the contracts in
pyproject.toml, and the same check fails on a copy where a lower floor imports a higher one."""

from __future__ import annotations

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
