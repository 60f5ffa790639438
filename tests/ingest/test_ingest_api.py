"""POST /ingest through httpx against the app, on a real embedded PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import psycopg

from ingest.body import MAX_EVENT_BYTES, MAX_REQUEST_BYTES
from mca.testing import wait_until_async


def track(i: int = 0, **over: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "type": "track",
        "event": "purchase",
        "userId": "u1",
        "messageId": f"m-{i}",
        "timestamp": "2026-01-05T10:00:00Z",
        "properties": {"revenue": 19.99, "sku": "SKU-1", "category": "shoes", "points": 20},
    }
    doc.update(over)
    return doc


async def test_single_track_is_committed_with_typed_columns(
    client: httpx.AsyncClient, fetch_events: Callable[[], list[dict[str, Any]]]
) -> None:
    resp = await client.post("/ingest", json=track(context={"ip": "10.0.0.1"}))
    assert resp.status_code == 202, resp.text
    assert resp.json() == {"accepted": 1, "duplicates": 0, "event_ids": ["m-0"]}
    [row] = fetch_events()
    assert (row["event_id"], row["user_id"], row["event_type"], row["source"]) == (
        "m-0",
        "u1",
        "purchase",
        "segment",
    )
    assert row["ts"] == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert float(row["value"]) == 19.99 and row["points"] == 20
    assert (row["sku"], row["category"]) == ("SKU-1", "shoes")
    assert row["properties"]["revenue"] == 19.99 and row["properties"]["_context"] == {"ip": "10.0.0.1"}


async def test_redelivery_is_a_counted_noop(
    client: httpx.AsyncClient, count_events: Callable[..., int]
) -> None:
    first = await client.post("/ingest", json={"batch": [track(1), track(2)]})
    again = await client.post("/ingest", json={"batch": [track(2), track(3), track(3)]})
    assert first.json()["accepted"] == 2
    assert again.json() == {"accepted": 1, "duplicates": 2, "event_ids": ["m-2", "m-3", "m-3"]}
    assert count_events() == 3


async def test_identify_traits_feed_the_profile(client: httpx.AsyncClient, db_url: str) -> None:
    traits = {
        "first_name": "Ada",
        "phone": "+15550001",
        "email": "a@x.io",
        "consent_sms": True,
        "birthday": "1990-04-23",
    }
    resp = await client.post(
        "/ingest",
        json={"type": "identify", "userId": "u7", "traits": traits, "timestamp": "2026-01-01T00:00:00Z"},
    )
    assert resp.status_code == 202, resp.text
    with psycopg.connect(db_url) as conn:
        row = conn.execute(
            "SELECT first_name, phone, consent_sms, birthday::text FROM user_profile WHERE user_id='u7'"
        ).fetchone()
    assert row == ("Ada", "+15550001", True, "1990-04-23")


async def test_cloudevents_single_and_batch(
    client: httpx.AsyncClient, fetch_events: Callable[[], list[dict[str, Any]]]
) -> None:
    ce = {
        "specversion": "1.0",
        "id": "1",
        "source": "/helpdesk",
        "type": "ticket_opened",
        "subject": "u2",
        "time": "2026-01-05T10:00:00+02:00",
        "data": {"text": "my order is late"},
        "priority": "high",
    }
    one = await client.post(
        "/ingest", content=orjson.dumps(ce), headers={"content-type": "application/cloudevents+json"}
    )
    batch = [dict(ce, id="2"), dict(ce, id="1")]
    two = await client.post(
        "/ingest",
        content=orjson.dumps(batch),
        headers={"content-type": "application/cloudevents-batch+json; charset=utf-8"},
    )
    assert one.status_code == 202 and two.json() == {
        "accepted": 1,
        "duplicates": 1,
        "event_ids": ["/helpdesk 2", "/helpdesk 1"],
    }
    rows = fetch_events()
    assert [r["event_id"] for r in rows] == ["/helpdesk 1", "/helpdesk 2"]
    assert rows[0]["text"] == "my order is late" and rows[0]["source"] == "/helpdesk"
    assert rows[0]["ts"] == datetime(2026, 1, 5, 8, tzinfo=UTC)
    assert rows[0]["properties"]["_ce"]["priority"] == "high"


async def test_bad_batch_names_every_bad_field_and_stores_nothing(
    client: httpx.AsyncClient, count_events: Callable[..., int]
) -> None:
    future = (datetime.now(UTC) + timedelta(minutes=10)).isoformat()
    batch = [
        track(0),
        {"type": "track", "event": "x", "messageId": "a"},
        track(2, timestamp=future),
        track(3, timestamp="yesterday"),
        track(4, properties={"revenue": "lots", "points": 1.5}),
        track(5, userId=["not", "a", "string"]),
        {"type": "identify", "userId": "u", "traits": {"consent_sms": "yes"}},
    ]
    resp = await client.post("/ingest", json={"batch": batch})
    assert resp.status_code == 422
    errors = {(e["field"], e["reason"]) for e in resp.json()["error"]["errors"]}
    assert ("batch[1].userId", "required (or anonymousId)") in errors
    assert ("batch[2].timestamp", "more than 5 minutes in the future") in errors
    assert any(p == "batch[3].timestamp" for p, _ in errors)
    assert ("batch[4].properties.revenue", "must be a number") in errors
    assert ("batch[4].properties.points", "must be an integer") in errors
    assert ("batch[5].userId", "must be a string") in errors
    assert ("batch[6].traits.consent_sms", "must be true or false") in errors
    assert count_events() == 0


async def test_limits_and_content_types(client: httpx.AsyncClient, count_events: Callable[..., int]) -> None:
    big_event = track(properties={"text": "x" * (MAX_EVENT_BYTES + 10)})
    assert (await client.post("/ingest", json=big_event)).status_code == 413
    in_batch = await client.post("/ingest", json={"batch": [track(0), big_event]})
    assert in_batch.status_code == 413 and "batch[1]" in in_batch.json()["error"]["message"]
    many = {"batch": [track(i, properties={"text": "y" * 20_000}) for i in range(30)]}
    assert len(orjson.dumps(many)) > MAX_REQUEST_BYTES
    assert (await client.post("/ingest", json=many)).status_code == 413
    form = await client.post(
        "/ingest", content=b"a=b", headers={"content-type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 415
    assert (
        await client.post("/ingest", content=b"{nope", headers={"content-type": "application/json"})
    ).status_code == 422
    nul = await client.post("/ingest", json=track(properties={"note": "a\x00b"}))
    assert nul.status_code == 422 and nul.json()["error"]["errors"][0]["field"] == "properties.note"
    assert count_events() == 0


async def test_streamed_body_over_the_limit_is_refused(client: httpx.AsyncClient) -> None:
    async def chunks() -> Any:
        for _ in range(20):
            yield b" " * 50_000  # no Content-Length: the cap applies while reading

    resp = await client.post("/ingest", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413


async def test_ids_fall_back_to_webhook_id_then_generated(client: httpx.AsyncClient) -> None:
    doc = {"type": "track", "event": "visit", "userId": "u1"}
    hooked = await client.post("/ingest", json={"batch": [doc, doc]}, headers={"webhook-id": "wh_1"})
    assert hooked.json()["event_ids"] == ["wh_1#0", "wh_1#1"]
    again = await client.post("/ingest", json={"batch": [doc, doc]}, headers={"webhook-id": "wh_1"})
    assert again.json()["duplicates"] == 2
    gen = await client.post("/ingest", json=doc)
    gen2 = await client.post("/ingest", json=doc)
    assert gen.json()["accepted"] == gen2.json()["accepted"] == 1
    assert gen.json()["event_ids"][0].startswith("gen-")


async def test_health_and_readiness(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    spec = (await client.get("/openapi.json")).json()
    assert "application/cloudevents-batch+json" in spec["paths"]["/ingest"]["post"]["requestBody"]["content"]


async def test_concurrent_overlapping_requests_count_each_event_once(
    client: httpx.AsyncClient, count_events: Callable[..., int]
) -> None:
    # Group commit mixes concurrent requests into one INSERT: each id must still be
    # "accepted" exactly once across all answers, and stored once.
    requests = [{"batch": [track((r * 7 + i) % 60) for i in range(10)]} for r in range(40)]
    answers = await asyncio.gather(*(client.post("/ingest", json=body) for body in requests))
    assert all(a.status_code == 202 for a in answers)
    accepted = sum(a.json()["accepted"] for a in answers)
    duplicates = sum(a.json()["duplicates"] for a in answers)
    distinct = len({e["messageId"] for body in requests for e in body["batch"]})
    assert accepted == distinct == count_events()
    assert accepted + duplicates == 400


async def test_store_down_means_503_then_recovers(
    client: httpx.AsyncClient, db_url: str, pg_server: Any, count_events: Callable[..., int]
) -> None:
    name = db_url.rsplit("/", 1)[1]
    admin = pg_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')  # type: ignore[arg-type]
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    try:
        answer = await client.post("/ingest", json=track(0))
        assert answer.status_code == 503 and int(answer.headers["retry-after"]) > 0
        assert (await client.get("/readyz")).status_code == 503
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')  # type: ignore[arg-type]
    assert count_events() == 0
    # The client retries, as Retry-After says, until the pool has reconnected (only visible
    # by asking: the pool has no reconnect event).
    answers: list[httpx.Response] = []

    async def reconnected() -> bool:
        answers.append(await client.post("/ingest", json=track(0)))
        return answers[-1].status_code != 503

    await wait_until_async(reconnected, "the store to come back", timeout_s=60, every_s=0.1)
    retry = answers[-1]
    assert retry.status_code == 202 and count_events() == 1


async def test_action_event_properties_the_views_cast_are_checked(
    client: httpx.AsyncClient, count_events: Callable[..., int]
) -> None:
    def sent(i: int, **props: Any) -> dict[str, Any]:
        base = {"decision_id": f"d{i}", "trigger": "churn_risk", "cost": "1.50", "propensity": 0.4,
                "window_s": 604800}  # fmt: skip
        return track(i, event="offer_sent", properties={**base, **props})

    bad = [
        sent(0, cost="abc"),
        sent(1, propensity=2),
        sent(2, window_s="7d"),
        {**sent(3), "event": "decision_recorded", "properties": {"window_s": 1.5}},
        sent(4, cost=True),
    ]
    resp = await client.post("/ingest", json={"batch": bad})
    assert resp.status_code == 422
    errors = {(e["field"], e["reason"]) for e in resp.json()["error"]["errors"]}
    assert errors == {
        ("batch[0].properties.cost", "must be a number"),
        ("batch[1].properties.propensity", "must be a probability in (0, 1]"),
        ("batch[2].properties.window_s", "must be a whole number of seconds, 1 to 316224000"),
        ("batch[3].properties.window_s", "must be a whole number of seconds, 1 to 316224000"),
        ("batch[4].properties.cost", "must be a number"),
    }
    assert count_events() == 0
    good = await client.post("/ingest", json={"batch": [sent(5), sent(6, cost=2, propensity=None)]})
    assert good.status_code == 202, good.text
    assert count_events() == 2
