"""Start-up cost of the embedder: with the ONNX graph cached, a process never imports torch.

`mca assets search` spent ~5 s of its ~9 s importing torch and sentence-transformers only to
hand their tokenizer to onnxruntime. These tests run fresh interpreters, the way a CLI call starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from state.embedding import get_embedder

PROBE = """
import sys
import numpy as np
from state.embedding import get_embedder
vector = get_embedder().embed(["waterproof hiking boots", "a matte lipstick"])
np.save(sys.argv[1], vector)
heavy = sorted(name for name in ("torch", "sentence_transformers", "transformers") if name in sys.modules)
print(",".join(heavy))
"""


def _probe(tmp_path: Path, cache: Path, name: str) -> tuple[str, np.ndarray]:
    out = tmp_path / f"{name}.npy"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(out)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip(), np.load(out)


def test_a_cached_graph_needs_no_torch(tmp_path: Path) -> None:
    get_embedder()  # exports into the user's cache if this machine has not yet
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    heavy, vectors = _probe(tmp_path, cache, "warm")
    assert heavy == ""
    np.testing.assert_allclose(
        vectors, get_embedder().embed(["waterproof hiking boots", "a matte lipstick"]), atol=1e-5
    )
