"""The asset catalogue: search by meaning (``search_assets``) and bulk load (``load_assets``).

Vectors travel as a text literal cast to ``vector(384)`` (``CAST(%s AS vector(384))``) rather
than through pgvector's binary psycopg adapter: the adapter needs the ``vector`` type's OID
from the server, which RisingWave's catalog does not expose the same way, while the text
form is accepted by both engines.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from mca.db import Engine, engine_of_connection, engine_of_version, one_round_trip
from state.asset_rows import AssetRow, read_asset_file

if TYPE_CHECKING:
    from state.embedding import Embedder

__all__ = [
    "AssetHit", "AssetRow", "load_assets", "read_asset_file", "search_assets", "search_by_vector",
    "vector_literal",
]  # fmt: skip

# pgvector's HNSW scan returns ef_search candidates and filters afterwards; with a selective
# filter that can leave fewer than k rows. Iterative scan keeps walking the graph until k rows
# pass the filter (pgvector >= 0.8). relaxed_order may return rows slightly out of order, so the
# outer query re-sorts the k hits exactly.
HNSW_SETTINGS = (
    "SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true), set_config('hnsw.ef_search', %s, true)"
)
MIN_EF_SEARCH = 40

_COLUMNS = "asset_id, kind, title, description, value, currency, category, tags"
_DISTANCE = "embedding <=> CAST(%(query)s AS vector(384)) AS distance"
# Approximate: the HNSW index walks the graph from the query outwards, filters on the way.
_ANN_HEAD = sql.SQL(
    f"SELECT {_COLUMNS}, distance FROM (SELECT {_COLUMNS}, {_DISTANCE} FROM assets"
    " WHERE embedding IS NOT NULL"
)
_ANN_TAIL = sql.SQL(" ORDER BY distance LIMIT %(k)s) AS hits ORDER BY distance, asset_id")
# Exact: filter first, then rank every survivor. A category keeps about a tenth of the catalogue,
# and ranking those rows exactly beats an HNSW iterative scan that may walk thousands of other
# categories' nodes before k rows pass (bench/bench_search.py).
_EXACT_HEAD = sql.SQL(
    f"WITH candidates AS MATERIALIZED (SELECT {_COLUMNS}, embedding FROM assets WHERE embedding IS NOT NULL"
)
_EXACT_TAIL = sql.SQL(
    f") SELECT {_COLUMNS}, {_DISTANCE} FROM candidates ORDER BY distance, asset_id LIMIT %(k)s"
)
_FILTERS = {
    "active_only": sql.SQL(" AND active"),
    "kind": sql.SQL(" AND kind = %(kind)s"),
    "category": sql.SQL(" AND category = %(category)s"),
    # Items without a value (content) cost nothing, so a price cap never hides them.
    "max_value": sql.SQL(" AND (value IS NULL OR value <= %(max_value)s)"),
    "now": sql.SQL(
        " AND (valid_from IS NULL OR valid_from <= %(now)s)"
        " AND (valid_until IS NULL OR valid_until > %(now)s)"
    ),
}

UPSERT_POSTGRES = """
INSERT INTO assets (asset_id, kind, title, description, value, currency, category, tags, active,
                    valid_from, valid_until, embedding, updated_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, CAST(%s AS vector(384)), %s)
ON CONFLICT (asset_id) DO UPDATE SET
    kind = EXCLUDED.kind, title = EXCLUDED.title, description = EXCLUDED.description,
    value = EXCLUDED.value, currency = EXCLUDED.currency, category = EXCLUDED.category,
    tags = EXCLUDED.tags, active = EXCLUDED.active, valid_from = EXCLUDED.valid_from,
    valid_until = EXCLUDED.valid_until, embedding = EXCLUDED.embedding, updated_at = EXCLUDED.updated_at
"""
# RisingWave tables with a primary key overwrite on conflict by default: a plain INSERT upserts.
UPSERT_RISINGWAVE = UPSERT_POSTGRES.split("ON CONFLICT")[0]


@dataclass(frozen=True)
class AssetHit:
    asset_id: str
    kind: str
    title: str
    description: str
    value: Decimal | None
    currency: str | None
    category: str | None
    tags: list[str]
    score: float  # 1 - cosine distance: 1 is identical meaning, 0 unrelated


def vector_literal(vector: Iterable[float]) -> str:
    """pgvector's text form, ``[0.1,0.2,…]``; float32 round-trips exactly with repr()."""
    return "[" + ",".join(map(repr, map(float, vector))) + "]"


def _search_statement(params: dict[str, Any], engine: Engine = Engine.POSTGRES) -> sql.Composed:
    exact = engine is Engine.POSTGRES and params.get("category") is not None
    parts = [_EXACT_HEAD if exact else _ANN_HEAD]
    parts += [fragment for name, fragment in _FILTERS.items() if params.get(name) not in (None, False)]
    parts.append(_EXACT_TAIL if exact else _ANN_TAIL)
    return sql.Composed(parts)


async def search_assets(
    conn: psycopg.AsyncConnection[Any],
    embedder: Embedder,
    query: str,
    *,
    kind: str | None = None,
    category: str | None = None,
    max_value: float | Decimal | None = None,
    k: int = 5,
    now: datetime | None = None,
    active_only: bool = True,
) -> list[AssetHit]:
    """The k catalogue items closest in meaning to ``query`` that pass every filter.

    "Valid now" means valid_from <= now < valid_until (either bound may be absent).
    """
    if k < 1:
        return []
    # The forward pass takes milliseconds of CPU: keep it off the event loop.
    vector = await asyncio.to_thread(embedder.embed_one, query)
    return await search_by_vector(
        conn, vector, kind=kind, category=category, max_value=max_value, k=k, now=now, active_only=active_only
    )


async def search_by_vector(
    conn: psycopg.AsyncConnection[Any],
    vector: Sequence[float],
    *,
    kind: str | None = None,
    category: str | None = None,
    max_value: float | Decimal | None = None,
    k: int = 5,
    now: datetime | None = None,
    active_only: bool = True,
) -> list[AssetHit]:
    """The SQL half of ``search_assets``, for callers that already hold a query vector."""
    if k < 1:
        return []
    params: dict[str, Any] = {
        "query": vector_literal(vector),
        "k": k,
        "kind": kind,
        "category": category,
        "max_value": max_value,
        "now": now or datetime.now(UTC),
        "active_only": active_only,
    }
    engine = await engine_of_connection(conn)
    statement = _search_statement(params, engine)
    if engine is Engine.POSTGRES:
        # The scan settings are local to a transaction: BEGIN, settings, search and COMMIT go
        # out together, one round trip.
        async with one_round_trip(conn):
            await conn.execute(HNSW_SETTINGS, (str(max(MIN_EF_SEARCH, k)),))
            cur = await conn.execute(statement, params)
    else:
        cur = await conn.execute(statement, params)
    return [_hit(row) for row in await cur.fetchall()]


def _hit(row: Any) -> AssetHit:
    r = (
        row
        if isinstance(row, dict)
        else dict(
            zip(
                (
                    "asset_id",
                    "kind",
                    "title",
                    "description",
                    "value",
                    "currency",
                    "category",
                    "tags",
                    "distance",
                ),
                row,
                strict=True,
            )
        )
    )
    return AssetHit(
        asset_id=r["asset_id"],
        kind=r["kind"],
        title=r["title"],
        description=r["description"],
        value=r["value"],
        currency=r["currency"],
        category=r["category"],
        tags=list(r["tags"] or []),
        score=1.0 - float(r["distance"]),
    )


def embedding_text(row: AssetRow) -> str:
    """What gets embedded: title, description and tags (the meaning a query should match)."""
    tags = f" Tags: {', '.join(row.tags)}." if row.tags else ""
    return f"{row.title}. {row.description}{tags}"


def load_assets(
    conn: psycopg.Connection[Any],
    path: Path,
    embedder: Embedder,
    batch_size: int = 64,
    progress: bool = True,
) -> int:
    """Validate, embed and upsert every asset in a JSON or CSV file; returns the count.

    Every row is validated before anything is written (an ``InputError`` names the row and
    field), and the rows are written in one transaction, so a bad file changes nothing.
    """
    rows = read_asset_file(Path(path))
    return upsert_assets(conn, rows, embedder, batch_size=batch_size, progress=progress)


def upsert_assets(
    conn: psycopg.Connection[Any],
    rows: Sequence[AssetRow],
    embedder: Embedder,
    *,
    batch_size: int = 64,
    progress: bool = True,
) -> int:
    from tqdm import tqdm

    vectors: list[str] = []
    with tqdm(total=len(rows), desc="embedding assets", unit="asset", disable=not progress) as bar:
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            vectors += [vector_literal(v) for v in embedder.embed([embedding_text(r) for r in batch])]
            bar.update(len(batch))
    row = conn.execute("SELECT version()").fetchone()
    assert row is not None
    version = row["version"] if isinstance(row, dict) else row[0]
    upsert = UPSERT_RISINGWAVE if engine_of_version(str(version)) is Engine.RISINGWAVE else UPSERT_POSTGRES
    now = datetime.now(UTC)
    params = [
        (
            r.asset_id,
            r.kind,
            r.title,
            r.description,
            r.value,
            r.currency,
            r.category,
            list(r.tags),
            r.active,
            r.valid_from,
            r.valid_until,
            vector,
            now,
        )
        for r, vector in zip(rows, vectors, strict=True)
    ]
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(upsert, params)
    if not conn.autocommit:
        conn.commit()
    return len(params)


def format_hits(hits: Sequence[AssetHit], *, min_score: float = 0.0) -> str:
    """A plain-text table of search results, best first, for the CLI and the demo.

    Hits scoring below ``min_score`` are left out; a last line names the floor and how many it hid.
    A floor of 0 or less shows every hit (cosine scores of opposite meanings are negative).
    """
    shown = [h for h in hits if min_score <= 0 or h.score >= min_score]
    footer = []
    if min_score > 0:
        footer = [f"(min score {min_score:.2f}: {len(hits) - len(shown)} hidden; --min-score 0 shows all)"]
    if not shown:
        return "\n".join(["(no matching assets)", *footer])
    header = f"{'score':>6}  {'asset_id':<22} {'kind':<8} {'value':>10}  {'category':<12} title"
    lines = [header, "-" * len(header)]
    for h in shown:
        value = "" if h.value is None else f"{h.value:,.0f} {h.currency or ''}".strip()
        lines.append(
            f"{h.score:>6.3f}  {h.asset_id:<22} {h.kind:<8} {value:>10}  {h.category or '':<12} {h.title}"
        )
    return "\n".join([*lines, *footer])
