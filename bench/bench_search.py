"""Latency of `search_assets` over a 10,000-asset catalogue: with the query embedding, and the
SQL part alone (HNSW index, filters, iterative scan).

    .venv/bin/python bench/bench_search.py                  # 10,000 assets, 1,000 queries
    .venv/bin/python bench/bench_search.py --assets 2000 --queries 300

The catalogue is the demo catalogue's 230 assets in many seasonal editions, embedded once into
the benchmark server (.mca-bench/) and reused by later runs.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_seed import bench_database

from demo.seed.catalogue import build_catalogue
from demo.seed.products import CATEGORIES
from mca.db import connect, connect_async
from state.asset_rows import AssetRow, validate_rows
from state.catalogue import _search_statement, search_assets, search_by_vector, upsert_assets, vector_literal
from state.embedding import Embedder, get_embedder

EDITIONS = [
    ("Spring", "Fresh for the first warm weekends of spring."),
    ("Summer", "Made for long light evenings and summer holidays."),
    ("Autumn", "For crisp mornings and the colours of autumn."),
    ("Winter", "Ready for short days, cold snaps and snow."),
    ("Holiday", "A gift-season edition for the people you love."),
    ("Weekend", "Valid this weekend only for members."),
    ("Members' week", "Part of our yearly members' week celebration."),
    ("Back to school", "For a fresh start at the beginning of term."),
    ("Birthday", "Our birthday treat for members in their birthday month."),
    ("Welcome", "A welcome gift for members in their first month."),
    ("Win-back", "We miss you: a thank-you for coming back."),
    ("VIP", "Reserved for gold and platinum members."),
]
AUDIENCES = ["families", "beginners", "commuters", "travellers", "students", "seniors", "athletes", "makers"]
QUERIES = [
    "camping stove",
    "what does someone who just bought a tent need next",
    "warm jacket for winter hikes",
    "gift for a coffee lover",
    "skincare for sensitive skin",
    "running shoes for beginners",
    "something for my dog on hikes",
    "noise cancelling headphones for travel",
    "home workout equipment",
    "cosy bedroom",
    "book about cooking outdoors",
    "discount on kitchen knives",
    "free shipping",
    "how to care for leather boots",
    "sunscreen for the beach",
    "cat toys",
    "smart home speaker",
    "thank you reward for a loyal customer",
    "rain jacket",
    "yoga mat",
]


def variants(count: int) -> list[AssetRow]:
    """``count`` distinct assets: catalogue items × seasonal editions × audiences."""
    base = build_catalogue()
    rows: list[dict[str, Any]] = []
    rng = random.Random(7)
    n = 0
    while len(rows) < count:
        item = base[n % len(base)]
        edition, sentence = EDITIONS[(n // len(base)) % len(EDITIONS)]
        audience = AUDIENCES[(n // (len(base) * len(EDITIONS))) % len(AUDIENCES)]
        value = item["value"] and round(item["value"] * rng.choice([0.8, 1.0, 1.2, 1.5]), 0)
        rows.append(
            {
                **item,
                "asset_id": f"{item['asset_id']}-v{n}",
                "title": f"{edition} for {audience}: {item['title']}",
                "description": f"{item['description']} {sentence} Picked for {audience}.",
                "value": value,
                "active": item["active"] and rng.random() > 0.05,
            }
        )
        n += 1
    return validate_rows(rows, source="bench variants")


def ensure_catalogue(count: int, embedder: Embedder) -> str:
    url = bench_database(f"search_{count}", fresh=False)
    with connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) AS n FROM assets").fetchone()
        if row is None or row["n"] != count:
            conn.execute("TRUNCATE assets")
            started = time.perf_counter()
            upsert_assets(conn, variants(count), embedder, batch_size=128)
            print(f"embedded and loaded {count:,} assets in {time.perf_counter() - started:.1f} s")
            conn.execute("VACUUM ANALYZE assets")
    return url


PHRASINGS = ["", "looking for ", "ideas: ", "best ", "affordable ", "gift: ", "recommend "]


def unique_queries(count: int, rng: random.Random) -> list[str]:
    """Distinct query texts, so the embedder's recent-query cache never answers (worst case)."""
    texts = [f"{p}{q} for {a}" for q in QUERIES for a in AUDIENCES for p in PHRASINGS]
    rng.shuffle(texts)
    return [texts[i % len(texts)] + ("" if i < len(texts) else f" #{i}") for i in range(count)]


def random_filters(rng: random.Random) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.5:
        return {}
    if roll < 0.75:
        return {"kind": rng.choice(["coupon", "reward", "content"])}
    if roll < 0.9:
        return {"category": rng.choice(CATEGORIES)}
    return {"max_value": rng.choice([10, 20, 50])}


def summary(label: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"{label}: p50 {statistics.median(samples):.2f} ms, p99 {p99:.2f} ms ({len(samples):,} queries)"


async def explain(conn: Any, embedder: Embedder, filters: dict[str, Any]) -> str:
    from datetime import UTC, datetime

    params = {"query": vector_literal(embedder.embed_one("camping stove")), "k": 5, "now": datetime.now(UTC),
              "active_only": True, "kind": None, "category": None, "max_value": None, **filters}  # fmt: skip
    async with conn.transaction():
        await conn.execute("SELECT set_config('hnsw.iterative_scan', 'relaxed_order', true)")
        statement = _search_statement(params).as_bytes(conn)
        cur = await conn.execute(b"EXPLAIN (ANALYZE) " + statement, params)
        lines = [str(next(iter(r.values()))) for r in await cur.fetchall()]
    return "\n    ".join(line for line in lines if "Scan" in line or "Execution" in line or "Filter" in line)


async def measure(url: str, embedder: Embedder, queries: int) -> None:
    rng = random.Random(1)
    conn = await connect_async(url, autocommit=True)
    try:
        for q in QUERIES:  # warm-up: buffers, prepared statements
            await search_assets(conn, embedder, q, k=5)
        workload = [(q, random_filters(rng)) for q in unique_queries(queries, rng)]
        full, sql_only, embed_only = [], [], []
        for q, filters in workload:
            started = time.perf_counter()
            hits = await search_assets(conn, embedder, q, k=5, **filters)
            full.append((time.perf_counter() - started) * 1000)
            assert len(hits) == 5, (q, filters, len(hits))
        vectors = {q: embedder.embed_one(q) for q, _ in workload}  # cached by the run above
        for q, filters in workload:
            started = time.perf_counter()
            await search_by_vector(conn, vectors[q], k=5, **filters)
            sql_only.append((time.perf_counter() - started) * 1000)
        for q, _ in workload:
            started = time.perf_counter()
            await asyncio.to_thread(embedder.embed, [q])  # bypasses the recent-query cache
            embed_only.append((time.perf_counter() - started) * 1000)
        for filters in (
            {},
            {"kind": "reward"},
            {"category": "pets"},
            {"kind": "content", "category": "books"},
        ):
            print(f"plan {filters or 'no filter'}:\n    {await explain(conn, embedder, filters)}")
    finally:
        await conn.close()
    print(summary("search_assets incl. query embedding", full) + "  (target p99 <= 15 ms)")
    print(summary("SQL part alone (search_by_vector)", sql_only))
    print(summary("query embedding alone", embed_only))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=1_000)
    args = parser.parse_args()
    embedder = get_embedder()
    url = ensure_catalogue(args.assets, embedder)
    asyncio.run(measure(url, embedder, args.queries))


if __name__ == "__main__":
    main()
