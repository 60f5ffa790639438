"""Opportunity queries (sql/triggers) with an injected clock, on the real embedded PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from agent.sources import PostgresTail
from agent.trigger_config import TriggerFile
from agent.trigger_service import TriggerService
from mca.testing import FrozenClock, add_events, event_row
from tests.agent.world import QUERIES_DIR, T0, TRIGGERS_FILE


def service(aconn: Any, ops_conn: Any, clock: FrozenClock) -> TriggerService:
    return TriggerService(
        source=PostgresTail(aconn),
        state=aconn,
        ops=ops_conn,
        triggers=TriggerFile(TRIGGERS_FILE, queries_dir=QUERIES_DIR),
        clock=clock,
        start="earliest",
    )


def opportunity(svc: TriggerService, name: str):  # type: ignore[no-untyped-def]
    return next(o for o in svc.triggers.current.opportunities if o.name == name)


async def jobs_for(conn: Any, trigger: str) -> list[dict[str, Any]]:
    cur = await conn.execute("SELECT * FROM agent_jobs WHERE trigger_name = %s ORDER BY user_id", (trigger,))
    return list(await cur.fetchall())


async def test_cart_abandoned_after_30_minutes_without_purchase(aconn, ops_conn, clock) -> None:
    await add_events(
        aconn,
        event_row("c1", "u_cart", "cart_add", T0, value=80, sku="APP-001", category="apparel"),
        event_row("c2", "u_bought", "cart_add", T0, value=50, sku="OUT-002"),
        event_row("p2", "u_bought", "purchase", T0 + timedelta(minutes=10), value=50, sku="OUT-002"),
        event_row("c3", "u_old", "cart_add", T0 - timedelta(days=3), value=20),
    )
    svc = service(aconn, ops_conn, clock)
    cart = opportunity(svc, "cart_abandoned")
    clock.now = T0 + timedelta(minutes=29)
    assert (await svc.run_opportunity(cart, clock.now)).jobs == []
    clock.now = T0 + timedelta(minutes=31)
    report = await svc.run_opportunity(cart, clock.now)
    assert len(report.jobs) == 1
    (job,) = await jobs_for(ops_conn, "cart_abandoned")
    assert job["user_id"] == "u_cart" and job["event"]["facts"]["sku"] == "APP-001"
    # Running again (any time later) finds the same cart: no second job.
    clock.now = T0 + timedelta(hours=2)
    assert (await svc.run_opportunity(cart, clock.now)).jobs == []


async def test_birthday_is_today_in_the_users_own_zone(aconn, ops_conn, clock) -> None:
    ts = T0 - timedelta(days=100)
    await add_events(
        aconn,
        event_row(
            "b1",
            "u_auckland",
            "identify",
            ts,
            properties={"birthday": "1990-03-11", "timezone": "Pacific/Auckland"},
        ),
        event_row("b2", "u_utc", "identify", ts, properties={"birthday": "1985-03-11"}),
        event_row(
            "b3", "u_dnc", "identify", ts, properties={"birthday": "1985-03-10", "do_not_contact": True}
        ),
    )
    svc = service(aconn, ops_conn, clock)
    birthday = opportunity(svc, "birthday")
    # 2026-03-10 12:00 UTC is already 2026-03-11 01:00 in Auckland.
    now = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
    report = await svc.run_opportunity(birthday, now)
    assert [j["user_id"] for j in await jobs_for(ops_conn, "birthday")] == ["u_auckland"]
    later = datetime(2026, 3, 11, 12, 0, tzinfo=UTC)
    report = await svc.run_opportunity(birthday, later)
    assert len(report.jobs) == 1
    assert [j["user_id"] for j in await jobs_for(ops_conn, "birthday")] == ["u_auckland", "u_utc"]


async def test_points_expiring_after_months_idle(aconn, ops_conn, clock) -> None:
    await add_events(
        aconn,
        event_row("p1", "u_idle", "points_earned", T0 - timedelta(days=160), points=800),
        event_row("p2", "u_active", "points_earned", T0 - timedelta(days=160), points=800),
        event_row("p3", "u_active", "session_start", T0 - timedelta(days=3)),
        event_row("p4", "u_gone", "points_earned", T0 - timedelta(days=200), points=800),
    )
    svc = service(aconn, ops_conn, clock)
    report = await svc.run_opportunity(opportunity(svc, "points_expiring"), T0)
    assert len(report.jobs) == 1
    (job,) = await jobs_for(ops_conn, "points_expiring")
    assert job["user_id"] == "u_idle" and job["event"]["facts"]["points_balance"] == 800


async def test_queries_run_on_their_schedule(aconn, ops_conn, clock) -> None:
    svc = service(aconn, ops_conn, clock)
    assert {o.name for o in await svc.due_opportunities(clock())} == {
        "cart_abandoned",
        "points_expiring",
        "birthday",
    }
    await svc.step_opportunities()
    assert await svc.due_opportunities(clock()) == []
    clock.advance(seconds=31)
    assert [o.name for o in await svc.due_opportunities(clock())] == ["cart_abandoned"]


async def test_one_unknown_time_zone_does_not_fail_the_query_for_everyone(aconn, ops_conn, clock) -> None:
    ts = T0 - timedelta(days=100)
    people = {"u_mars": ("1990-03-10", "Mars/Olympus_Mons"), "u_paris": ("1991-03-10", "Europe/Paris"),
              "u_lower": ("1992-03-11", "pacific/auckland")}  # fmt: skip
    await add_events(
        aconn,
        *[event_row(f"z-{user}", user, "identify", ts, properties={"birthday": day, "timezone": zone})
          for user, (day, zone) in people.items()],
    )  # fmt: skip
    svc = service(aconn, ops_conn, clock)
    # 2026-03-10 12:00 UTC: the 10th in Paris and (for the unknown zone) in UTC, the 11th in Auckland.
    report = await svc.run_opportunity(opportunity(svc, "birthday"), T0)
    jobs = await jobs_for(ops_conn, "birthday")
    assert [j["user_id"] for j in jobs] == ["u_lower", "u_mars", "u_paris"] and len(report.jobs) == 3
    zones = {j["user_id"]: j["event"]["facts"]["timezone"] for j in jobs}
    assert zones == {"u_mars": "UTC", "u_paris": "Europe/Paris", "u_lower": "pacific/auckland"}
