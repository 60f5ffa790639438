"""`HashEmbedder`: a deterministic `Embedder` for tests that need vectors but not meaning.

Word unigrams, word bigrams and character trigrams are hashed (blake2b: stable across
processes, unlike ``hash()``) into signed buckets of a 384-d vector, then normalised. Texts
that share most of their words score close to 1; unrelated texts score near 0. It loads in
microseconds where the real model takes seconds; one real-model test per behaviour that needs
meaning (relevance, ONNX-vs-torch parity, memory) stays in tests/state.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from state.embedding import DIMENSIONS

_WORD = re.compile(r"\w+")


def _features(text: str) -> Iterator[str]:
    words = _WORD.findall(text.lower())
    yield from (f"w:{w}" for w in words)
    yield from (f"b:{a} {b}" for a, b in pairwise(words))
    for word in words:
        padded = f"<{word}>"
        yield from (f"c:{padded[i : i + 3]}" for i in range(len(padded) - 2))


class HashEmbedder:
    """Hashed n-gram features into a unit vector of `dimensions` floats."""

    model_name = "hash-ngrams"

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self.dimensions = dimensions

    def vector(self, text: str) -> np.ndarray[Any, np.dtype[np.float32]]:
        out = np.zeros(self.dimensions, dtype=np.float32)
        for feature in _features(text):
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimensions
            out[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(out))
        if norm == 0.0:  # no words: a fixed unit vector, so cosine distance stays defined
            out[0] = 1.0
            return out
        return out / norm

    def embed(
        self, texts: Sequence[str], *, show_progress: bool = False
    ) -> np.ndarray[Any, np.dtype[np.float32]]:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.stack([self.vector(t) for t in texts])

    def embed_one(self, text: str) -> list[float]:
        return [float(x) for x in self.vector(text)]
