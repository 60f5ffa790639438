"""Trigger service on the real embedded PostgreSQL: rules, cooldowns, restarts, commit order."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.queue import enqueue
from agent.sources import PostgresTail
from agent.trigger_config import TriggerFile
from agent.trigger_service import TriggerService
from mca.db import connect_async
from mca.testing import FrozenClock, add_events, event_row
from tests.agent.world import QUERIES_DIR, T0, TRIGGERS_FILE

RULES = """
defaults: {cooldown: 1h, user_cooldown: 0s}
rules:
  - {name: big_purchase, event: purchase, when: ["event.value >= 100"], goal: post_purchase}
  - {name: churn_risk, event: churn_scored, when: ["event.properties.score >= 0.8"], goal: retention}
  - {name: loyal_session, event: session_start, when: ["stats.purchases >= 2"], goal: win_back}
  - {name: welcome_back, event: session_start, when: ["user.days_away >= 14"], goal: win_back}
"""


def service(aconn: Any, ops_conn: Any, clock: FrozenClock, triggers: Path | None = None) -> TriggerService:
    return TriggerService(
        source=PostgresTail(aconn),
        state=aconn,
        ops=ops_conn,
        triggers=TriggerFile(triggers or TRIGGERS_FILE, queries_dir=QUERIES_DIR),
        clock=clock,
        start="earliest",
    )


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "triggers.yaml"
    path.write_text(RULES)
    return path


async def jobs(conn: Any) -> list[dict[str, Any]]:
    cur = await conn.execute("SELECT * FROM agent_jobs ORDER BY created_at, job_id")
    return list(await cur.fetchall())


async def test_rules_match_event_and_stats_conditions(aconn, ops_conn, clock, rules_file) -> None:
    await add_events(
        aconn,
        event_row("e1", "u1", "purchase", T0, value=150, sku="tent", category="outdoor"),
        event_row("e2", "u2", "purchase", T0, value=40),
        event_row("e3", "u3", "churn_scored", T0, properties={"score": 0.91}),
        event_row("e4", "u4", "churn_scored", T0, properties={"score": 0.2}),
        event_row("e5", "u2", "purchase", T0 + timedelta(minutes=1), value=20),
        event_row("e6", "u2", "session_start", T0 + timedelta(minutes=2)),
        event_row("e7", "u5", "session_start", T0 - timedelta(days=30)),
        event_row("e8", "u5", "session_start", T0),
    )
    svc = service(aconn, ops_conn, clock, rules_file)
    report = await svc.step_stream()
    assert report.events == 8
    made = {(j["trigger_name"], j["user_id"]) for j in await jobs(ops_conn)}
    assert made == {
        ("big_purchase", "u1"),
        ("churn_risk", "u3"),
        ("loyal_session", "u2"),
        ("welcome_back", "u5"),
    }
    (purchase_job,) = [j for j in await jobs(ops_conn) if j["trigger_name"] == "big_purchase"]
    assert purchase_job["event"]["sku"] == "tent" and purchase_job["goal"] == "post_purchase"
    assert purchase_job["decision_id"].startswith("dec_")


async def test_a_burst_makes_one_job_until_the_cooldown_passes(aconn, ops_conn, clock, rules_file) -> None:
    await add_events(aconn, *[event_row(f"b{i}", "u1", "purchase", T0, value=200 + i) for i in range(5)])
    svc = service(aconn, ops_conn, clock, rules_file)
    report = await svc.step_stream()
    assert len(report.jobs) == 1 and report.cooled == 4
    clock.advance(minutes=30)
    await add_events(aconn, event_row("b5", "u1", "purchase", clock.now, value=300))
    assert (await svc.step_stream()).jobs == []
    clock.advance(minutes=31)
    await add_events(aconn, event_row("b6", "u1", "purchase", clock.now, value=300))
    assert len((await svc.step_stream()).jobs) == 1
    assert len(await jobs(ops_conn)) == 2


async def test_user_cooldown_spans_triggers(aconn, ops_conn, clock, tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(RULES.replace("user_cooldown: 0s", "user_cooldown: 10m"))
    await add_events(
        aconn,
        event_row("c1", "u1", "purchase", T0, value=500),
        event_row("c2", "u1", "churn_scored", T0, properties={"score": 0.95}),
    )
    report = await service(aconn, ops_conn, clock, path).step_stream()
    assert len(report.jobs) == 1 and report.cooled == 1


async def test_a_replayed_match_sets_no_cooldown_for_the_next_one_in_its_batch(
    aconn, ops_conn, clock, rules_file
) -> None:
    """The jobs of a batch are sent together; where a customer matches again later in the batch,
    whether the earlier job was new is read first: an event already made into a job (its dedup
    key exists, e.g. a stream read again) sets no cooldown, so the next purchase still acts."""
    await add_events(
        aconn,
        event_row("r1", "u1", "purchase", T0, value=150),
        event_row("r2", "u1", "purchase", T0, value=160),
    )
    svc = service(aconn, ops_conn, clock, rules_file)
    events, _ = await svc.source.fetch({"xid": "0", "seq": 0}, 1)
    (first,) = await svc.match_events(events, clock.now)
    await enqueue(ops_conn, svc._job_of(first), now=clock.now - timedelta(days=1))  # made long ago
    await ops_conn.execute("DELETE FROM trigger_cooldowns")
    report = await svc.step_stream()
    assert report.cooled == 0 and len(report.jobs) == 1
    made = [j["dedup_key"] for j in await jobs(ops_conn)]
    assert made == [first.dedup_key, "big_purchase:u1:r2"]
    cur = await ops_conn.execute("SELECT trigger_name FROM trigger_cooldowns ORDER BY 1")
    assert [r["trigger_name"] for r in await cur.fetchall()] == ["*", "big_purchase"]


async def test_restart_neither_loses_nor_repeats(aconn, ops_conn, clock, rules_file) -> None:
    await add_events(aconn, event_row("r1", "u1", "purchase", T0, value=120))
    await service(aconn, ops_conn, clock, rules_file).step_stream()
    # A new service instance (a restart) resumes from the stored position.
    await add_events(aconn, event_row("r2", "u2", "purchase", T0, value=130))
    restarted = service(aconn, ops_conn, clock, rules_file)
    report = await restarted.step_stream()
    assert report.events == 1 and len(report.jobs) == 1
    assert (await restarted.step_stream()).events == 0
    assert sorted(j["user_id"] for j in await jobs(ops_conn)) == ["u1", "u2"]


async def test_a_transaction_committing_after_a_higher_seq_is_not_skipped(
    aconn, ops_conn, clock, rules_file, db_url
) -> None:
    """Invariant 6: seq order is not commit order."""
    slow = await connect_async(db_url)
    try:
        # The slow transaction takes the lower seq and stays open...
        await slow.execute(
            "INSERT INTO events (event_id, user_id, event_type, ts, value) "
            "VALUES ('slow', 'u1', 'purchase', %s, 500)",
            (T0,),
        )
        # ...while a later one commits a higher seq.
        await add_events(aconn, event_row("fast", "u2", "purchase", T0, value=500))
        cur = await aconn.execute("SELECT event_id, seq FROM events ORDER BY seq")
        assert [r["event_id"] for r in await cur.fetchall()] == ["fast"]
        svc = service(aconn, ops_conn, clock, rules_file)
        await svc.step_stream()
        await slow.commit()
        seqs = {
            r["event_id"]: r["seq"]
            for r in await (await aconn.execute("SELECT event_id, seq FROM events")).fetchall()
        }
        assert seqs["slow"] < seqs["fast"]
        await svc.step_stream()
    finally:
        await slow.close()
    assert sorted(j["user_id"] for j in await jobs(ops_conn)) == ["u1", "u2"]


async def test_in_flight_rows_wait_even_when_their_seq_is_higher(
    aconn, ops_conn, clock, rules_file, db_url
) -> None:
    blocker = await connect_async(db_url)
    try:
        await blocker.execute(
            "INSERT INTO events (event_id, user_id, event_type, ts, value) "
            "VALUES ('open', 'u9', 'purchase', %s, 1)",
            (T0,),
        )
        await add_events(aconn, event_row("later", "u2", "purchase", T0, value=500))
        svc = service(aconn, ops_conn, clock, rules_file)
        # The committed row sits above the oldest open transaction: not read yet.
        assert (await svc.step_stream()).events == 0
        await blocker.rollback()
        assert (await svc.step_stream()).events == 1
    finally:
        await blocker.close()


async def test_triggers_file_reload_and_bad_edit(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(RULES)
    watched = TriggerFile(path, queries_dir=QUERIES_DIR)
    assert len(watched.refresh().rules) == 4
    path.write_text(RULES + "  - {name: tier, event: tier_upgrade, goal: tier_welcome}\n")
    os.utime(path, ns=(1, 10**18))
    assert len(watched.refresh().rules) == 5
    path.write_text(RULES.replace('"event.value >= 100"', '"event.value >>= 100"'))
    os.utime(path, ns=(1, 2 * 10**18))
    assert len(watched.refresh().rules) == 5
    assert watched.last_error is not None and "rules[big_purchase].when" in watched.last_error


async def test_a_reload_with_a_wrong_path_kind_or_goal_is_refused(tmp_path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text(RULES)
    watched = TriggerFile(path, queries_dir=QUERIES_DIR)
    edits = [
        (RULES.replace("stats.purchases >= 2", "stats.purchaces >= 2"), "rules[loyal_session].when"),
        (RULES.replace('"event.value >= 100"', "\"event.value >= 'lots'\""), "rules[big_purchase].when"),
        (RULES.replace("goal: retention", "goal: retain"), "rules[churn_risk].goal"),
    ]
    for n, (text, named) in enumerate(edits, start=1):
        path.write_text(text)
        os.utime(path, ns=(1, n * 10**18))
        assert len(watched.refresh().rules) == 4 and watched.current.rules[2].conditions[0].text.endswith(
            ">= 2"
        )
        assert watched.last_error is not None and named in watched.last_error


async def test_the_latest_start_skips_history(aconn, ops_conn, clock, rules_file) -> None:
    await add_events(aconn, event_row("h1", "u1", "purchase", T0, value=999))
    svc = service(aconn, ops_conn, clock, rules_file)
    svc.start = "latest"
    assert (await svc.step_stream()).jobs == []
    await add_events(aconn, event_row("h2", "u1", "purchase", T0, value=999))
    assert len((await svc.step_stream()).jobs) == 1


async def test_shipped_triggers_file_loads() -> None:
    loaded = TriggerFile(TRIGGERS_FILE, queries_dir=QUERIES_DIR).current
    assert {o.name for o in loaded.opportunities} == {"cart_abandoned", "points_expiring", "birthday"}
    assert all(isinstance(psycopg.sql.SQL(o.sql), psycopg.sql.SQL) for o in loaded.opportunities)


async def test_interleaved_transactions_read_below_xmin_lose_nothing(
    aconn, ops_conn, clock, rules_file, db_url
) -> None:
    """A commits seqs 1 and 3 while B (seq 2) is still open: B's row is read after it commits."""
    a = await connect_async(db_url)
    b = await connect_async(db_url)
    insert = (
        "INSERT INTO events (event_id, user_id, event_type, ts, value) VALUES (%s, %s, 'purchase', %s, 500)"
    )
    try:
        await a.execute(insert, ("a1", "ua1", T0))
        await b.execute(insert, ("b1", "ub", T0))
        await a.execute(insert, ("a2", "ua2", T0))
        await a.commit()
        svc = service(aconn, ops_conn, clock, rules_file)
        assert (await svc.step_stream()).events == 2
        await b.commit()
        assert (await svc.step_stream()).events == 1
    finally:
        await a.close()
        await b.close()
    assert sorted(j["user_id"] for j in await jobs(ops_conn)) == ["ua1", "ua2", "ub"]


async def test_service_reconnects_after_its_connections_are_killed(aconn, settings, stores) -> None:
    import asyncio

    from agent.runtime import run_trigger_service
    from mca.testing import wait_until_async

    async def wait_for_jobs(n: int) -> None:
        async def enough() -> bool:
            return len(await jobs(aconn)) >= n

        await wait_until_async(enough, f"{n} jobs")

    stop = asyncio.Event()
    task = asyncio.create_task(run_trigger_service(settings, stores, stop, start="earliest", retry_s=0.1))
    try:
        # The real clock runs this service: the events happen now, inside max_event_age.
        await add_events(aconn, event_row("k1", "u1", "purchase", datetime.now(UTC), value=300))
        await wait_for_jobs(1)
        await aconn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await add_events(aconn, event_row("k2", "u2", "purchase", datetime.now(UTC), value=300))
        await wait_for_jobs(2)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert sorted(j["user_id"] for j in await jobs(aconn)) == ["u1", "u2"]
