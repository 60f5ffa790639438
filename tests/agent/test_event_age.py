"""Live rules act on live events: an old event neither fires nor spends the cooldown, and a
batch marked backfill at /ingest never triggers (rules or opportunity queries)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.sources import PostgresTail
from agent.trigger_config import TriggerFile
from agent.trigger_service import TriggerService
from mca.backfill import BACKFILL_KEY
from mca.testing import FrozenClock, add_events, event_row
from tests.agent.world import QUERIES_DIR, T0, TRIGGERS_FILE
from tests.ingest.helpers import ingest_app, running

RULES = """
defaults: {cooldown: 1d, user_cooldown: 0s}
rules:
  - {name: big_purchase, event: purchase, when: ["event.value >= 100"], goal: post_purchase}
  - {name: any_age_review, event: review, goal: default, max_event_age: 60d}
  - {name: fresh_session, event: session_start, when: ["event.age <= 5m"], goal: win_back, max_event_age: 1d}
"""


def service(aconn: Any, clock: Any, triggers: Path = TRIGGERS_FILE) -> TriggerService:
    return TriggerService(
        source=PostgresTail(aconn), state=aconn, ops=aconn, clock=clock, start="earliest",
        triggers=TriggerFile(triggers, queries_dir=QUERIES_DIR),
    )  # fmt: skip


async def job_rows(conn: Any) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT trigger_name, user_id, event FROM agent_jobs ORDER BY created_at, job_id"
    )
    return list(await cur.fetchall())


async def test_an_old_event_does_not_fire_and_does_not_spend_the_cooldown(aconn, clock: FrozenClock) -> None:
    await add_events(aconn, event_row("replayed", "u1", "purchase", T0 - timedelta(days=40), value=500))
    svc = service(aconn, clock)
    report = await svc.step_stream()
    assert report.jobs == [] and report.too_old == 1
    cur = await aconn.execute("SELECT count(*) AS n FROM trigger_cooldowns")
    assert (await cur.fetchone())["n"] == 0
    # The real purchase a minute later is acted on: the replay left no cooldown behind.
    await add_events(aconn, event_row("real", "u1", "purchase", T0 - timedelta(minutes=1), value=500))
    assert len((await svc.step_stream()).jobs) == 1
    ((trigger, user, event),) = [tuple(r.values()) for r in await job_rows(aconn)]
    assert (trigger, user, event["event_id"]) == ("big_purchase", "u1", "real")


async def test_max_event_age_per_rule_and_event_age_as_a_fact(
    aconn, clock: FrozenClock, tmp_path: Path
) -> None:
    path = tmp_path / "triggers.yaml"
    path.write_text(RULES)
    await add_events(
        aconn,
        event_row("r-old", "u1", "review", T0 - timedelta(days=30)),  # inside this rule's 60d
        event_row("s-10m", "u2", "session_start", T0 - timedelta(minutes=10)),  # fails event.age <= 5m
        event_row("s-2m", "u3", "session_start", T0 - timedelta(minutes=2)),
        event_row("p-2h", "u4", "purchase", T0 - timedelta(hours=2), value=900),  # past the 1h default
    )
    report = await service(aconn, clock, path).step_stream()
    assert {(r["trigger_name"], r["user_id"]) for r in await job_rows(aconn)} == {
        ("any_age_review", "u1"),
        ("fresh_session", "u3"),
    }
    assert report.too_old == 1


async def test_a_backfill_batch_never_triggers(settings, stores, aconn) -> None:
    now = datetime.now(UTC)

    def track(n: int, event: str, ago: timedelta, **props: Any) -> dict[str, Any]:
        return {"type": "track", "event": event, "userId": f"u{n}", "messageId": f"m{n}",
                "timestamp": (now - ago).isoformat(), "properties": props}  # fmt: skip

    history = [track(1, "purchase", timedelta(minutes=1), revenue=400),
               track(2, "cart_add", timedelta(minutes=45), revenue=80, sku="APP-001")]  # fmt: skip
    async with running(ingest_app(settings, stores)) as client:
        by_query = await client.post("/ingest?backfill=true", json={"batch": history})
        by_header = await client.post(
            "/ingest", json=track(3, "purchase", timedelta(seconds=5), revenue=300),
            headers={"X-MCA-Backfill": "true"},
        )  # fmt: skip
        live = await client.post("/ingest", json=track(4, "purchase", timedelta(seconds=5), revenue=300))
        malformed = await client.post("/ingest?backfill=perhaps", json=track(5, "purchase", timedelta(0)))
    assert [r.status_code for r in (by_query, by_header, live)] == [202, 202, 202]
    assert malformed.status_code == 422 and malformed.json()["error"]["errors"][0]["field"] == "backfill"
    cur = await aconn.execute("SELECT user_id, properties FROM events ORDER BY user_id")
    stored = {r["user_id"]: r["properties"] for r in await cur.fetchall()}
    assert sorted(stored) == ["u1", "u2", "u3", "u4"]  # the malformed request stored nothing
    assert [u for u, p in stored.items() if p.get(BACKFILL_KEY) is True] == ["u1", "u2", "u3"]

    svc = service(aconn, lambda: datetime.now(UTC))
    report = await svc.step_stream()
    assert report.backfill == 3
    assert (await svc.step_opportunities()).jobs == []  # u2's backfilled cart is not abandoned
    assert [(r["trigger_name"], r["user_id"]) for r in await job_rows(aconn)] == [("big_purchase", "u4")]
