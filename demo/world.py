"""The demo's pieces: a small world, one scripted customer story, and how to show the result.

`mca demo` is a thin call to ``run_demo``; each step is its own function so a richer demo
(the agent acting on the story) can reuse them.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from demo.seed.products import BY_SKU
from demo.seed.world import COLUMNS, EventRow

if TYPE_CHECKING:
    from mca.settings import Settings
    from state.catalogue import AssetHit
    from state.embedding import Embedder, SentenceEmbedder

DEMO_USER = "demo-alice"
DEMO_USERS = 200
DEMO_EVENTS = 5_000
DEMO_SEED = 42
NEXT_NEED_QUERY = "what does someone who just bought a tent need next"

CONTEXT_COLUMNS = (
    "user_id, first_name, timezone, tier, consent_sms, consent_email, do_not_contact, "
    "events_total, purchases, lifetime_value, points_balance, last_purchase_sku, "
    "last_purchase_category, churn_score, open_tickets, sessions_7d, purchases_7d, "
    "jsonb_pretty(context) AS context"
)
# psql interpolates :'uid' as a properly quoted literal (variables only work on stdin/-f, not -c).
CONTEXT_QUERY = f"SELECT {CONTEXT_COLUMNS} FROM unified_context WHERE user_id = :'uid';\n"
CONTEXT_QUERY_BOUND = f"SELECT {CONTEXT_COLUMNS} FROM unified_context WHERE user_id = %s"
_INSERT_STORY = (
    f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, CAST(%s AS jsonb)) ON CONFLICT (event_id) DO NOTHING"
)


def seed_story_events(now: datetime | None = None, user_id: str = DEMO_USER) -> list[EventRow]:
    """Alice joins, browses camping gear, puts a tent in her cart and buys it.

    Event ids are fixed, so inserting the story twice changes nothing (the first timestamps stay).
    """
    now = now or datetime.now(UTC)
    tent, pad, stove, bag = (BY_SKU[s] for s in ("OUT-001", "OUT-004", "OUT-002", "OUT-003"))

    def row(n: int, event_type: str, ago: timedelta, source: str = "web", **fields: Any) -> EventRow:
        props = fields.pop("properties", {})
        product = fields.pop("product", None)
        return EventRow(
            event_id=f"{user_id}-{n:02d}",
            user_id=user_id,
            event_type=event_type,
            ts=now - ago,
            source=source,
            value=fields.get("value"),
            points=fields.get("points"),
            sku=product.sku if product else None,
            category=product.category if product else fields.get("category"),
            text=None,
            properties=json.dumps(props, separators=(",", ":")),
        )

    identify = {
        "first_name": "Alice", "phone": "+14155550134", "email": "alice@example.com",
        "timezone": "America/Los_Angeles", "tier": "silver", "consent_sms": True,
        "consent_email": True, "consent_push": False, "do_not_contact": False, "birthday": "1991-06-14",
    }  # fmt: skip
    return [
        row(1, "identify", timedelta(days=30), properties=identify),
        row(2, "session_start", timedelta(minutes=55), "ios", properties={"session_id": "alice-1"}),
        row(3, "product_viewed", timedelta(minutes=52), "ios", product=bag, properties={"price": bag.price}),
        row(
            4,
            "product_viewed",
            timedelta(minutes=49),
            "ios",
            product=stove,
            properties={"price": stove.price},
        ),
        row(5, "product_viewed", timedelta(minutes=45), "ios", product=pad, properties={"price": pad.price}),
        row(
            6, "product_viewed", timedelta(minutes=41), "ios", product=tent, properties={"price": tent.price}
        ),
        row(
            7,
            "cart_add",
            timedelta(minutes=38),
            "ios",
            product=tent,
            value=tent.price,
            properties={"quantity": 1},
        ),
        row(
            8,
            "purchase",
            timedelta(minutes=30),
            "ios",
            product=tent,
            value=tent.price,
            properties={"order_id": "alice-o1", "quantity": 1, "currency": "USD"},
        ),
        row(
            9,
            "points_earned",
            timedelta(minutes=29, seconds=55),
            "loyalty",
            category=tent.category,
            points=int(tent.price * 10 * 1.25),
            properties={"order_id": "alice-o1", "tier": "silver"},
        ),
    ]


def insert_story(conn: psycopg.Connection[Any], rows: list[EventRow]) -> int:
    """Insert the story's events, skipping any already there; returns how many were new."""
    inserted = 0
    with conn.transaction(), conn.cursor() as cur:
        for r in rows:
            cur.execute(_INSERT_STORY, r)
            inserted += cur.rowcount
    if not conn.autocommit:
        conn.commit()
    return inserted


def context_as_psql(url: str, user_id: str = DEMO_USER) -> str:
    """The user's unified_context row exactly as `psql -x` prints it (the wheel's psql)."""
    from mca.embedded import psql_path

    try:
        args = [str(psql_path()), "-X", "-x", "-v", "ON_ERROR_STOP=1", "-v", f"uid={user_id}"]
        done = subprocess.run(
            [*args, "-d", url, "-f", "-"],
            input=CONTEXT_QUERY,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout
    except (OSError, subprocess.SubprocessError):
        return _expanded_display(url, user_id)


def _expanded_display(url: str, user_id: str) -> str:
    # Same shape as psql's expanded display, for machines where the psql binary cannot run.
    from mca.db import connect

    with connect(url) as conn:
        row = conn.execute(CONTEXT_QUERY_BOUND, (user_id,)).fetchone()
    if row is None:
        return "(0 rows)\n"
    width = max(len(k) for k in row)
    lines = ["-[ RECORD 1 ]" + "-" * (width + 10)]
    for key, value in row.items():
        text = "" if value is None else str(value)
        first, *rest = text.splitlines() or [""]
        lines.append(f"{key:<{width}} | {first}")
        lines += [f"{'':<{width}} | {more}" for more in rest]
    return "\n".join(lines) + "\n"


async def next_best_assets(
    url: str, embedder: Embedder, query: str = NEXT_NEED_QUERY, k: int = 5
) -> list[AssetHit]:
    from mca.db import connect_async
    from state.catalogue import search_assets

    conn = await connect_async(url, autocommit=True)
    try:
        return await search_assets(conn, embedder, query, k=k)
    finally:
        await conn.close()


@dataclass
class DemoResult:
    state_url: str
    context_text: str
    hits: list[AssetHit]


def prepare_world(
    settings: Settings, echo: Callable[[str], None], embedder_future: Future[SentenceEmbedder]
) -> str:
    """Start/migrate the stores, seed the small world and the catalogue; returns the state URL."""
    from demo.seed.load import ensure_catalogue, seed_world
    from mca.db import connect, resolve_stores
    from mca.migrate import migrate

    stores = resolve_stores(settings)
    migrate(settings, stores.state_url, stores.ops_url)
    echo(f"state store ready: {stores.state_url}")
    with connect(stores.state_url, autocommit=True) as conn:
        report = seed_world(conn, DEMO_USERS, DEMO_EVENTS, DEMO_SEED)
        echo(report.describe())
        loaded = ensure_catalogue(conn, embedder_future.result())
        echo(f"catalogue: {loaded} assets embedded and loaded" if loaded else "catalogue: already loaded")
        new = insert_story(conn, seed_story_events())
        echo(f"story of {DEMO_USER}: {new} new events" if new else f"story of {DEMO_USER}: already told")
    return stores.state_url


def run_demo(settings: Settings, echo: Callable[[str], None]) -> DemoResult:
    from state.embedding import get_embedder

    # Loading the model takes seconds: do it while the server starts and the world loads.
    with ThreadPoolExecutor(max_workers=1) as pool:
        embedder_future = pool.submit(get_embedder, settings.embedding.model, settings.embedding.batch_size)
        url = prepare_world(settings, echo, embedder_future)
        embedder = embedder_future.result()
    from state.catalogue import format_hits

    context_text = context_as_psql(url)
    echo(f"\n=== unified_context for {DEMO_USER} (psql -x) ===")
    echo(context_text)
    hits = asyncio.run(next_best_assets(url, embedder))
    echo(f'=== top assets for "{NEXT_NEED_QUERY}" ===')
    echo(format_hits(hits))
    return DemoResult(url, context_text, hits)
