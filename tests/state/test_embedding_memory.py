"""The ONNX path keeps torch and sentence-transformers out of the serving process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mca.db import connect
from mca.errors import ConfigError
from state import onnx_encoder
from state.catalogue import load_assets
from state.embedding import DEFAULT_MODEL, SentenceEmbedder, get_embedder

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "sentence_transformers", "transformers")
SEARCH = textwrap.dedent(
    """
    import asyncio, json, sys
    from state.catalogue import search_assets
    from mca.db import connect_async
    from state.embedding import get_embedder

    async def main():
        conn = await connect_async(sys.argv[1])
        hits = await search_assets(conn, get_embedder(), "a stove for camping", k=1)
        await conn.close()
        heavy = sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2].split(",")))
        print(json.dumps({"hit": hits[0].asset_id, "heavy": heavy}))

    asyncio.run(main())
    """
)


@pytest.mark.parametrize("cache", ["warm", "cold"])
def test_a_search_through_onnx_never_imports_torch(db_url: str, tmp_path: Path, cache: str) -> None:
    assets = tmp_path / "assets.json"
    assets.write_text(
        json.dumps(
            [
                {
                    "asset_id": "stove",
                    "kind": "reward",
                    "title": "Camping stove",
                    "description": "A light gas stove for backpacking",
                    "value": 40,
                    "active": True,
                },
                {
                    "asset_id": "lipstick",
                    "kind": "reward",
                    "title": "Matte lipstick",
                    "description": "A long-lasting red lipstick",
                    "value": 20,
                    "active": True,
                },
            ]
        )
    )
    with connect(db_url, autocommit=True) as conn:
        load_assets(conn, assets, get_embedder(), progress=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if cache == "cold":  # no cached graph: the export runs, in a child of the child
        env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    done = subprocess.run(
        [sys.executable, "-c", SEARCH, db_url, ",".join(HEAVY)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"hit": "stove", "heavy": []}
    if cache == "cold":
        assert list((tmp_path / "cache" / "mca" / "onnx").glob("minilm-*.onnx"))


def test_an_impossible_export_falls_back_to_torch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))

    def refuse(model_path: Path, graph: Path) -> None:
        raise onnx_encoder.ExportFailed(f"cannot export the ONNX encoder to {graph}: refused")

    monkeypatch.setattr(onnx_encoder, "export_in_child", refuse)
    embedder = SentenceEmbedder(DEFAULT_MODEL, backend="onnx")
    assert embedder.backend == "torch"
    np.testing.assert_allclose(
        embedder.embed(["camping stove"]), get_embedder().embed(["camping stove"]), atol=1e-5
    )


def test_a_model_folder_without_a_tokenizer_cannot_use_onnx(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no tokenizer\.json"):
        onnx_encoder.OnnxEncoder(tmp_path)
