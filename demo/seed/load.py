"""Loading the synthetic world into the state store: COPY on PostgreSQL, batched INSERT on
RisingWave (which has no COPY FROM STDIN), one transaction, with a progress bar."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg

from demo.seed.world import COLUMNS, EventRow, first_event_id, generate_events
from mca.db import Engine, detect_engine
from mca.errors import InputError

if TYPE_CHECKING:
    from state.embedding import Embedder

_COPY = f"COPY events ({', '.join(COLUMNS)}) FROM STDIN"
_INSERT = (
    f"INSERT INTO events ({', '.join(COLUMNS)}) VALUES "
    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, CAST(%s AS jsonb))"
)
INSERT_BATCH = 2_000


@dataclass(frozen=True)
class SeedReport:
    users: int
    events: int
    seconds: float
    skipped: bool  # True when this seed's world was already in the store

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        if self.skipped:
            return f"world already loaded ({self.users:,} users); nothing to do"
        return (
            f"loaded {self.events:,} events for {self.users:,} users in {self.seconds:.1f} s "
            f"({self.rate:,.0f} events/s)"
        )


def world_loaded(conn: psycopg.Connection[Any], seed: int) -> bool:
    return (
        conn.execute("SELECT 1 FROM events WHERE event_id = %s", (first_event_id(seed),)).fetchone()
        is not None
    )


def seed_world(
    conn: psycopg.Connection[Any],
    users: int,
    events: int,
    seed: int,
    *,
    now: datetime | None = None,
    progress: bool = True,
) -> SeedReport:
    """Generate and load one world; a seed already present is skipped, not doubled."""
    from tqdm import tqdm

    if world_loaded(conn, seed):
        return SeedReport(users, 0, 0.0, skipped=True)
    engine = detect_engine(conn)
    rows = generate_events(users, events, seed, now)  # validates the sizes before any write
    started = time.perf_counter()
    written = 0
    with tqdm(total=events, desc="loading events", unit="ev", unit_scale=True, disable=not progress) as bar:
        try:
            with conn.transaction():
                load = _copy if engine is Engine.POSTGRES else _insert
                written = load(conn, rows, bar)
        except psycopg.errors.UniqueViolation as err:
            raise InputError(
                f"--seed {seed}: events from this seed with other --users/--events are already loaded "
                f"({err.diag.message_detail or err}); pick another --seed"
            ) from None
    if not conn.autocommit:
        conn.commit()
    if engine is Engine.RISINGWAVE:
        conn.execute("FLUSH")  # make the rows visible to the views at once
    return SeedReport(users, written, time.perf_counter() - started, skipped=False)


def _copy(conn: psycopg.Connection[Any], rows: Any, bar: Any) -> int:
    written = 0
    with conn.cursor() as cur, cur.copy(_COPY) as copy:
        for row in rows:
            copy.write_row(row)
            written += 1
            if written % 5_000 == 0:
                bar.update(5_000)
    bar.update(written % 5_000)
    return written


def _insert(conn: psycopg.Connection[Any], rows: Any, bar: Any) -> int:
    written = 0
    batch: list[EventRow] = []
    with conn.cursor() as cur:
        for row in rows:
            batch.append(row)
            if len(batch) == INSERT_BATCH:
                cur.executemany(_INSERT, batch)
                written += len(batch)
                bar.update(len(batch))
                batch = []
        if batch:
            cur.executemany(_INSERT, batch)
            written += len(batch)
            bar.update(len(batch))
    return written


def ensure_catalogue(
    conn: psycopg.Connection[Any], embedder: Embedder, *, path: Path | None = None, progress: bool = True
) -> int:
    """Load the demo catalogue unless every one of its assets is already there; returns rows loaded."""
    from demo.seed.catalogue import CATALOGUE_PATH
    from state.catalogue import read_asset_file, upsert_assets

    rows = read_asset_file(path or CATALOGUE_PATH)
    ids = [r.asset_id for r in rows]
    found = conn.execute("SELECT count(*) AS n FROM assets WHERE asset_id = ANY(%s)", (ids,)).fetchone()
    present = int(found["n"] if isinstance(found, dict) else found[0]) if found else 0
    if present == len(ids):
        return 0
    return upsert_assets(conn, rows, embedder, progress=progress)
