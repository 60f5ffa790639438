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


SERVE_PROBE = """
import json, sys
from mca.app import create_app
from mca.db import Stores
from mca.settings import Settings

url = "postgresql://mca@127.0.0.1:1/never"  # built, not started: nothing connects
create_app(Settings(state_url=url, ops_url=url), Stores(state_url=url, ops_url=url))
print(json.dumps(sorted(m for m in %r if m in sys.modules)))
"""
# Loaded by the work that needs them (a report, an interval, a chart, the torch fallback), never
# resident in a serving process: scipy.stats and statsmodels alone are ~100 MiB.
NOT_IN_SERVE = ("scipy.stats", "statsmodels", "matplotlib", "torch", "sentence_transformers")


def test_the_served_app_keeps_statistics_and_charts_out_of_memory() -> None:
    command = [sys.executable, "-c", SERVE_PROBE % (NOT_IN_SERVE,)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
