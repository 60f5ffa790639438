"""A query-embedding cache in front of the embedder the tool server uses for the agent.

Marketing searches repeat ("accessories that complement a tent", "apology goodwill coupon"),
and the forward pass costs milliseconds of CPU each time; a bounded LRU makes a repeated
query free. Catalogue embedding (batches) passes straight through.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any


class QueryEmbeddingCache:
    def __init__(self, embedder: Any, size: int = 2048) -> None:
        self.inner = embedder
        self.size = size
        self._memo: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()  # embed_one runs in worker threads (asyncio.to_thread)

    def embed_one(self, text: str) -> list[float]:
        with self._lock:
            found = self._memo.get(text)
            if found is not None:
                self._memo.move_to_end(text)
                return found
        vector = list(self.inner.embed_one(text))
        with self._lock:
            self._memo[text] = vector
            if len(self._memo) > self.size:
                self._memo.popitem(last=False)
        return vector

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @classmethod
    def shared(cls, embedder: Any) -> QueryEmbeddingCache:
        """One cache per embedder per process, so every runtime in it shares the warm entries."""
        if isinstance(embedder, QueryEmbeddingCache):
            return embedder
        with _shared_lock:
            found = _shared.get(id(embedder))
            if found is None or found.inner is not embedder:
                found = _shared[id(embedder)] = cls(embedder)
            return found


_shared: dict[int, QueryEmbeddingCache] = {}
_shared_lock = threading.Lock()
