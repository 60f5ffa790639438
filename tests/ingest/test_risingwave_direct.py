"""The direct transport on a RisingWave state store, against the wire-protocol stand-in
(mca/testing/risingwave.py): what mca sends is a multi-row INSERT, then FLUSH, before the 202."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mca.db import Stores
from mca.settings import Settings
from mca.testing.risingwave import FakeRisingWave
from tests.ingest.helpers import ingest_app, running


@pytest.fixture
def risingwave() -> Iterator[FakeRisingWave]:
    with FakeRisingWave().serving() as server:
        yield server


async def test_insert_then_flush_before_acknowledging(
    risingwave: FakeRisingWave, db_url: str, tmp_path: Path
) -> None:
    settings = Settings(state_url=risingwave.url, ops_url=db_url, data_dir=tmp_path)
    app = ingest_app(settings, Stores(state_url=risingwave.url, ops_url=db_url))
    batch = [
        {
            "type": "track",
            "event": "purchase",
            "userId": "u1",
            "messageId": f"m{i}",
            "properties": {"revenue": 2},
        }
        for i in range(3)
    ]
    async with running(app) as client:
        first = await client.post("/ingest", json={"batch": batch})
        again = await client.post("/ingest", json={"batch": batch[:1]})
    assert first.status_code == 202 and first.json() == {
        "accepted": 3,
        "duplicates": None,
        "event_ids": ["m0", "m1", "m2"],
    }
    assert again.status_code == 202
    # The primary key keeps one row per event id: the redelivery overwrote itself.
    assert sorted(risingwave.events) == ["m0", "m1", "m2"]
    sent = [s.split()[0].upper() for s in risingwave.statements if s.upper().startswith(("INSERT", "FLUSH"))]
    assert sent == ["INSERT", "FLUSH", "INSERT", "FLUSH"]
    assert risingwave.flushes == 2
    row = risingwave.events["m0"]
    assert row[1:3] == ("u1", "purchase")
