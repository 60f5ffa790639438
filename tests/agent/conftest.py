"""Fixtures for the agent tests: autocommit async connections and an event writer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mca.db import connect_async
from mca.settings import PROJECT_ROOT

TRIGGERS_FILE = PROJECT_ROOT / "config" / "triggers.yaml"
QUERIES_DIR = PROJECT_ROOT / "sql" / "triggers"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        from datetime import timedelta

        self.now = self.now + timedelta(**kwargs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def aconn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await connect_async(db_url, autocommit=True)
    yield conn
    await conn.close()


@pytest.fixture
async def ops_conn(db_url: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    conn = await connect_async(db_url, autocommit=True)
    yield conn
    await conn.close()


INSERT_EVENT = """
INSERT INTO events (event_id, user_id, event_type, ts, value, points, sku, category, text, properties)
VALUES (%(event_id)s, %(user_id)s, %(event_type)s, %(ts)s, %(value)s, %(points)s, %(sku)s, %(category)s,
        %(text)s, %(properties)s)
"""


def event_row(event_id: str, user_id: str, event_type: str, ts: datetime, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "event_type": event_type,
        "ts": ts,
        "value": kw.get("value"),
        "points": kw.get("points"),
        "sku": kw.get("sku"),
        "category": kw.get("category"),
        "text": kw.get("text"),
        "properties": json.dumps(kw.get("properties") or {}),
    }


async def add_events(conn: psycopg.AsyncConnection[Any], *rows: dict[str, Any]) -> None:
    async with conn.transaction():
        for row in rows:
            await conn.execute(INSERT_EVENT, row)


def write_triggers(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# --- a small world for decisions: customers, assets with real embeddings, the tool server ---

NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CUSTOMERS: dict[str, dict[str, Any]] = {
    "u_ana": {"first_name": "Ana", "phone": "+15550000001", "email": "ana@example.com", "timezone": "UTC",
              "tier": "gold", "consent_sms": True, "consent_email": True},
    "u_optout": {"first_name": "Olu", "phone": "+15550000004", "email": "olu@example.com", "timezone": "UTC",
                 "consent_sms": False, "consent_email": False},
    "u_bo": {"first_name": "Bo", "phone": "+15550000002", "email": "bo@example.com", "timezone": "UTC",
             "consent_sms": True, "consent_email": True},
}  # fmt: skip
CATEGORIES = ("outdoor", "apparel", "home")


class CachedEmbedder:
    """The real embedder, remembering texts it has embedded (assets repeat in every test)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.memo: dict[str, list[float]] = {}

    def embed(self, texts: list[str], **kw: Any) -> list[list[float]]:
        missing = [t for t in texts if t not in self.memo]
        if missing:
            for text, vec in zip(missing, self.inner.embed(missing, **kw), strict=True):
                self.memo[text] = list(vec)
        return [self.memo[t] for t in texts]

    def embed_one(self, text: str) -> list[float]:
        return self.embed([text])[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture(scope="session")
def embedder() -> CachedEmbedder:
    from state.embedding import get_embedder

    return CachedEmbedder(get_embedder())


def catalogue_rows() -> list[Any]:
    from state.asset_rows import AssetRow

    items = json.loads((PROJECT_ROOT / "demo" / "seed" / "catalogue.json").read_text())
    return [AssetRow.model_validate(i) for i in items if i.get("category") in CATEGORIES]


def seed_customers(url: str, customers: dict[str, dict[str, Any]] = CUSTOMERS) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for user_id, traits in customers.items():
            conn.execute(
                "INSERT INTO events (event_id, user_id, event_type, ts, properties) "
                "VALUES (%s, %s, 'identify', %s, %s)",
                (f"id-{user_id}", user_id, datetime(2026, 1, 1, tzinfo=UTC), json.dumps(traits)),
            )


@pytest.fixture
def agent_world(db_url: str, embedder: CachedEmbedder) -> str:
    from mca.db import connect
    from state.catalogue import upsert_assets

    seed_customers(db_url)
    with connect(db_url, autocommit=True) as conn:
        upsert_assets(conn, catalogue_rows(), embedder, progress=False)  # type: ignore[arg-type]
    return db_url


@pytest.fixture
def frozen() -> Any:
    from mca.clock import FrozenClock

    return FrozenClock(NOON)


@pytest.fixture
def agent_settings(agent_world: str, tmp_path: Path) -> Any:
    from mca.settings import Settings

    return Settings(state_url=agent_world, ops_url=agent_world, data_dir=tmp_path / "data")


@pytest.fixture
def agent_stores(agent_world: str) -> Any:
    from mca.db import Stores

    return Stores(state_url=agent_world, ops_url=agent_world)
