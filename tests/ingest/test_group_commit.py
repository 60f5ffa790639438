"""Group commit isolates one bad request from the rest (issue 8, item 13).

A group is many concurrent requests in one transaction. When the store refuses one request's
data, or its rows cannot even be encoded, only that request fails (422); every other request
in the group is stored, acknowledged and committed together. The poison here is a CHECK
constraint the test adds (a value PostgreSQL rejects, whatever the parser lets through) and
properties nested deeper than JSON encoding allows.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from ingest.direct import PostgresDirect
from ingest.errors import ValidationFailed
from ingest.transport import Receipt
from mca.db import open_pool
from mca.testing.waiting import wait_until_async
from tests.ingest.helpers import serve, stop_process

T0 = datetime(2026, 1, 5, 10, tzinfo=UTC)
POISON = "ALTER TABLE events ADD CONSTRAINT no_poison CHECK (user_id <> 'poison')"
BURST = 120
EVENTS_PER_REQUEST = 3


def row(event_id: str, user_id: str = "u1", properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "user_id": user_id,
        "event_type": "purchase",
        "ts": T0,
        "received_at": T0,
        "source": "segment",
        "value": 12.5,
        "points": 10,
        "sku": "SKU-1",
        "category": "shoes",
        "text": None,
        "properties": properties if properties is not None else {"revenue": 12.5},
    }


def nested(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for _ in range(depth):
        doc = {"a": doc}
    return doc


@pytest.fixture(params=[True, False], ids=["autocommit", "transactional"])
async def direct(db_url: str, request: pytest.FixtureRequest) -> AsyncIterator[PostgresDirect]:
    """Both kinds of pool the transport is handed: the gateway's autocommit one, and a
    transactional one (a caller's own), where each statement needs its own transaction."""
    pool = await open_pool(db_url, max_size=4, name="test-ingest", autocommit=request.param)
    transport = PostgresDirect(pool)
    yield transport
    await transport.close()
    await pool.close()


async def one_group(transport: PostgresDirect, requests: list[list[dict[str, Any]]]) -> list[Any]:
    """Queue every request before any writer runs, so the first writer takes them as one group."""
    tasks = [asyncio.create_task(transport.write(rows)) for rows in requests]

    async def all_in() -> bool:  # each request queued, or refused before queueing
        return transport.queued + sum(t.done() for t in tasks) == len(tasks)

    await wait_until_async(all_in, "every request queued or refused", timeout_s=10)
    await transport.start()
    return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)


def stored(db_url: str) -> tuple[int, int]:
    """(rows, distinct committing transactions) in events."""
    with psycopg.connect(db_url) as conn:
        found = conn.execute("SELECT count(*), count(DISTINCT xid) FROM events").fetchone()
    assert found is not None
    return int(found[0]), int(found[1])


def burst(poisoned: int, poison: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return [
        [row(f"r{r}-e{i}", **(poison if r == poisoned else {})) for i in range(EVENTS_PER_REQUEST)]
        for r in range(BURST)
    ]


async def test_a_request_the_store_refuses_fails_alone(direct: PostgresDirect, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(POISON)
    outcomes = await one_group(direct, burst(57, {"user_id": "poison"}))
    refused = [o for o in outcomes if not isinstance(o, Receipt)]
    assert len(refused) == 1 and isinstance(outcomes[57], ValidationFailed)
    assert "no_poison" in str(outcomes[57])
    receipts = [o for o in outcomes if isinstance(o, Receipt)]
    assert len(receipts) == BURST - 1
    assert all(r.accepted == EVENTS_PER_REQUEST and r.duplicates == 0 for r in receipts)
    # The 119 valid requests are stored, and still committed together (one transaction).
    assert stored(db_url) == ((BURST - 1) * EVENTS_PER_REQUEST, 1)


async def test_a_request_that_cannot_be_encoded_fails_alone(direct: PostgresDirect, db_url: str) -> None:
    outcomes = await one_group(direct, burst(3, {"properties": nested(300)}))
    assert isinstance(outcomes[3], ValidationFailed)
    assert "events[0]" in str(outcomes[3])
    assert sum(isinstance(o, Receipt) for o in outcomes) == BURST - 1
    assert stored(db_url) == ((BURST - 1) * EVENTS_PER_REQUEST, 1)


async def test_duplicates_are_counted_when_the_group_is_isolated(direct: PostgresDirect, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(POISON)
        conn.execute(
            "INSERT INTO events (event_id, user_id, event_type, ts) VALUES ('old', 'u1', 'purchase', %s)",
            (T0,),
        )
    outcomes = await one_group(
        direct,
        [
            [row("a"), row("b"), row("a")],  # a repeat inside one request
            [row("p", user_id="poison")],
            [row("b"), row("old"), row("c")],  # b claimed by the first request, old stored before
        ],
    )
    assert outcomes[0] == Receipt(accepted=2, duplicates=1, event_ids=["a", "b", "a"])
    assert isinstance(outcomes[1], ValidationFailed)
    assert outcomes[2] == Receipt(accepted=1, duplicates=2, event_ids=["b", "old", "c"])
    assert stored(db_url)[0] == 4


async def test_a_server_fault_is_not_blamed_on_the_client(direct: PostgresDirect, db_url: str) -> None:
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE events RENAME TO events_elsewhere")
    [outcome] = await one_group(direct, [[row("x")]])
    assert isinstance(outcome, psycopg.errors.UndefinedTable)  # the app answers 500, not 422


@pytest.fixture(scope="module")
def poisoned_server(module_db_url: str) -> Iterator[str]:
    with psycopg.connect(module_db_url, autocommit=True) as conn:
        conn.execute(POISON)
    served = serve(module_db_url)
    yield served.base_url
    stop_process(served.process)


def track(request: int, event: int, user: str) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "purchase",
        "userId": user,
        "messageId": f"h{request}-{event}",
        "timestamp": "2026-01-05T10:00:00Z",
        "properties": {"revenue": 12.5},
    }


async def test_a_burst_over_http_with_one_poisoned_request_stores_every_valid_one(
    poisoned_server: str, module_db_url: str
) -> None:
    """The issue's figure: 120 concurrent requests to `mca serve`, one refused by the store."""
    poisoned = 60
    bodies = [
        {"batch": [track(r, i, "poison" if r == poisoned else f"u{r}") for i in range(EVENTS_PER_REQUEST)]}
        for r in range(BURST)
    ]
    limits = httpx.Limits(max_connections=BURST)
    async with httpx.AsyncClient(base_url=poisoned_server, timeout=30, limits=limits) as client:
        answers = await asyncio.gather(*(client.post("/ingest", json=body) for body in bodies))
    statuses = [a.status_code for a in answers]
    assert statuses[poisoned] == 422 and "no_poison" in answers[poisoned].text
    assert statuses.count(202) == BURST - 1
    with psycopg.connect(module_db_url) as conn:
        found = conn.execute("SELECT count(*) FROM events WHERE event_id LIKE 'h%'").fetchone()
    assert found is not None and found[0] == (BURST - 1) * EVENTS_PER_REQUEST
