"""The embedder: the real packaged all-MiniLM-L6-v2, loaded once for the session."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mca.errors import ConfigError
from state.embedding import (
    DEFAULT_MODEL,
    DIMENSIONS,
    Embedder,
    SentenceEmbedder,
    get_embedder,
    resolve_model_path,
)


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return get_embedder()


def test_vectors_are_384_normalized_float32(embedder: Embedder) -> None:
    vectors = embedder.embed(["a tent", "a camping stove", "a red lipstick"])
    assert vectors.shape == (3, DIMENSIONS)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embed_one_is_a_list_matching_the_batch(embedder: Embedder) -> None:
    one = embedder.embed_one("waterproof hiking boots")
    assert isinstance(one, list) and len(one) == DIMENSIONS and all(isinstance(x, float) for x in one)
    batch = embedder.embed(["waterproof hiking boots", "something else entirely"])[0]
    np.testing.assert_allclose(one, batch, atol=1e-5)


def test_no_texts_gives_an_empty_matrix(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, DIMENSIONS)


def test_meaning_is_captured(embedder: Embedder) -> None:
    tent, stove, lipstick = embedder.embed(["a backpacking tent", "a camping stove", "a matte lipstick"])
    assert float(tent @ stove) > float(tent @ lipstick) + 0.1


def test_the_loader_is_shared_across_threads(embedder: Embedder) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        loaded = list(pool.map(lambda _: get_embedder(), range(8)))
    assert all(e is embedder for e in loaded)


def test_concurrent_embedding_gives_the_same_vectors(embedder: Embedder) -> None:
    texts = [f"gift idea number {i}" for i in range(8)]
    expected = embedder.embed(texts)
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(embedder.embed_one, texts))
    np.testing.assert_allclose(np.array(got), expected, atol=1e-5)


def test_an_unknown_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no-such-model"):
        SentenceEmbedder("no-such-model")


def test_repeated_queries_come_from_the_cache_unchanged(embedder: Embedder) -> None:
    first = embedder.embed_one("a thank-you gift for a loyal member")
    first[0] = 99.0  # callers own their copy; the cache keeps the original
    again = embedder.embed_one("a thank-you gift for a loyal member")
    assert again[0] != 99.0
    np.testing.assert_allclose(again, embedder.embed(["a thank-you gift for a loyal member"])[0], atol=1e-5)


def test_onnx_encoder_matches_sentence_transformers(embedder: Embedder) -> None:
    """The default ONNX graph is the same model: its vectors equal torch's, batched and padded."""
    assert embedder.backend == "onnx"
    reference = SentenceEmbedder(embedder.model_name, batch_size=3, backend="torch")
    texts = [
        "camping stove",
        "a lightweight two-person backpacking tent with a rain fly and aluminium poles",
        "lipstick",
        "Ünïcode — émojis 🎉 and punctuation!?",
        "",
    ]
    np.testing.assert_allclose(embedder.embed(texts), reference.embed(texts), atol=1e-5)


def test_a_corrupt_onnx_cache_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from state import onnx_encoder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    model_path = resolve_model_path(DEFAULT_MODEL)
    graph = onnx_encoder.cache_dir() / f"minilm-{onnx_encoder.model_fingerprint(model_path)}.onnx"
    graph.parent.mkdir(parents=True)
    graph.write_bytes(b"not a graph")
    with pytest.raises(ConfigError, match="cannot load the ONNX encoder"):
        SentenceEmbedder(DEFAULT_MODEL, backend="onnx")
