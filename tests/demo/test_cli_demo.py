"""`mca demo --world-only` (the state-engine demo), `mca seed` and `mca assets` as a user runs
them: the real console script, its own embedded server in a temporary data folder.
(The whole-product `mca demo` is tested by the agent's e2e tests.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

MCA = str(Path(sys.executable).with_name("mca"))


def run(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MCA, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def demo_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCA_")}
    env["MCA_DATA_DIR"] = str(tmp_path_factory.mktemp("demo-data"))
    env["HF_HUB_OFFLINE"] = "1"
    yield env
    run(env, "db", "down", timeout=90)


@pytest.mark.slow
def test_demo_prints_context_and_assets_and_reruns(demo_env: dict[str, str]) -> None:
    first = run(demo_env, "demo", "--world-only")
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "-[ RECORD 1 ]" in out
    assert "user_id                | demo-alice" in out
    assert "last_purchase_sku      | OUT-001" in out
    assert '"recent_events": [' in out
    assert "what does someone who just bought a tent need next" in out
    table = out.split("need next")[-1]
    assert "score" in table and table.count("outdoor") >= 2

    again = run(demo_env, "demo", "--world-only")
    assert again.returncode == 0, again.stderr
    assert "already loaded" in again.stdout and "already told" in again.stdout
    assert "events_total           | 9" in again.stdout


@pytest.mark.slow
def test_assets_search_and_seed_commands(demo_env: dict[str, str], tmp_path: Path) -> None:
    extra = tmp_path / "extra.csv"
    extra.write_text(
        "asset_id,kind,title,description,category,tags\n"
        "cnt-kayak,content,Kayaking for beginners,Paddling a sit-on-top kayak on calm water,outdoor,kayak\n"
    )
    loaded = run(demo_env, "assets", "load", str(extra))
    assert loaded.returncode == 0, loaded.stderr
    assert "loaded 1 assets" in loaded.stdout
    kayak = run(demo_env, "assets", "search", "paddling a kayak", "--kind", "content", "-k", "1")
    assert "cnt-kayak" in kayak.stdout

    found = run(demo_env, "assets", "search", "dog harness for hiking", "--category", "pets", "-k", "3")
    assert found.returncode == 0, found.stderr
    lines = [line for line in found.stdout.splitlines() if "pets" in line]
    assert len(lines) == 3 and any("Harness" in line for line in lines)

    seeded = run(demo_env, "seed", "--users", "50", "--events", "500", "--seed", "3", "--skip-catalogue")
    assert seeded.returncode == 0, seeded.stderr
    assert "loaded 500 events for 50 users" in seeded.stdout and "events/s" in seeded.stdout


def test_bad_input_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCA_")}
    env["MCA_DATA_DIR"] = str(tmp_path / "never-created")
    bad_seed = run(env, "seed", "--users", "10", "--events", "5")
    assert bad_seed.returncode == 1
    assert bad_seed.stderr.strip().startswith("error: --events: must be at least twice --users")

    bad_file = tmp_path / "assets.json"
    bad_file.write_text(json.dumps([{"asset_id": "a", "kind": "coupon", "title": "t", "description": "d"}]))
    bad_load = run(env, "assets", "load", str(bad_file))
    assert bad_load.returncode == 1
    assert "row 1: field 'value'" in bad_load.stderr
    assert not (tmp_path / "never-created").exists()
