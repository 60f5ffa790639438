"""`mca --help` stays quick: the root and every package's command module load only typer and
the standard library; settings (pydantic), the database driver and the models load in the
command bodies that need them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pydantic", "psycopg", "numpy", "torch", "sentence_transformers", "onnxruntime", "mcp", "httpx")

PROBE = f"""
import json, sys
sys.argv = ["mca", "--help"]
from mca.cli import app
try:
    app()
except SystemExit:
    pass
print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}} & set({list(HEAVY)!r}))))
"""


def test_help_loads_no_heavy_module() -> None:
    command = [sys.executable, "-c", PROBE]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    assert "Usage" in done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
