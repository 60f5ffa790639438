"""The dispatcher: claims outbox rows, delivers them, records a status per row.

Claims are leases (`FOR UPDATE SKIP LOCKED`, then status `sending` until `lease_until`), so
several dispatchers share the work and a crashed one's rows are picked up again; the row's
`idem_key` goes to providers that accept an idempotency key. Per claim, tenacity retries
transient failures a few times with exponential backoff; after that the row waits
`dispatch_backoff_s * 2^(attempts-1)` (or the provider's Retry-After) and is dead-lettered
after `dispatch_max_attempts`. Suppressions (STOP, invalid number) are recorded and never
retried. Kill switch and shadow mode stop all claims.

Every claimed row is judged again just before it is sent (`mcp_tools.rejudge`): a row that
waited on the kill switch, quiet hours or backoff is not sent if the guard would refuse it now
or it is older than `max_age_s`; it ends `cancelled` or `expired` with its reason and an audit
row. A dead, suppressed, cancelled or expired row releases its budget reservation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from psycopg_pool import AsyncConnectionPool
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from mca.clock import Clock
from mca.events import EventSink
from mcp_tools import ledger
from mcp_tools.announce import announce
from mcp_tools.errors import DeliveryError, PermanentDelivery, RetryableDelivery, SuppressDelivery
from mcp_tools.guard import CallContext
from mcp_tools.ledger_sql import UPDATE_CALL
from mcp_tools.policy import Policy, PolicyStore
from mcp_tools.providers.base import OutboxItem, Provider
from mcp_tools.rejudge import Claimed, Redecision, channel_of, rejudge
from mcp_tools.switches import effective_policy
from state.context import load_contact

log = logging.getLogger(__name__)

# The claim also returns what re-judging needs: the call's context and the user's suppressions.
CLAIM = """
WITH claimed AS (
    UPDATE outbox o
    SET status = 'sending', attempts = o.attempts + 1, lease_until = %(lease)s, updated_at = %(now)s
    WHERE o.outbox_id IN (
        SELECT outbox_id FROM outbox
        WHERE (status = 'pending' AND next_attempt_at <= %(now)s)
           OR (status = 'sending' AND lease_until < %(now)s)
        ORDER BY next_attempt_at LIMIT %(n)s FOR UPDATE SKIP LOCKED)
    RETURNING o.outbox_id, o.idem_key, o.kind, o.user_id, o.payload, o.attempts, o.call_id, o.created_at)
SELECT c.*, t.tool, t.arguments, t.caller, t.trigger_name, t.decision_id,
       ARRAY(SELECT s.channel FROM suppressions s WHERE s.user_id = c.user_id) AS suppressed
FROM claimed c JOIN tool_calls t ON t.call_id = c.call_id
"""
DELIVERED = """
UPDATE outbox SET status = 'delivered', provider = %s, provider_ref = %s, delivered_at = %s, updated_at = %s,
       lease_until = NULL, last_error = NULL, reason = NULL
WHERE outbox_id = %s
"""
# Back to waiting without spending an attempt (kill switch, shadow mode, quiet hours).
RESCHEDULE = """
UPDATE outbox SET status = 'pending', attempts = attempts - 1, next_attempt_at = %s, lease_until = NULL,
       reason = %s, updated_at = %s
WHERE outbox_id = %s AND status = 'sending'
"""
WITHDRAW = """
UPDATE outbox SET status = %s, reason = %s, last_error = %s, lease_until = NULL, updated_at = %s
WHERE outbox_id = %s AND status = 'sending'
"""
FAILED = """
UPDATE outbox SET status = %s, provider = %s, last_error = %s, next_attempt_at = %s, updated_at = %s,
       lease_until = NULL
WHERE outbox_id = %s RETURNING call_id
"""
SUPPRESS = """
INSERT INTO suppressions (user_id, channel, reason, source, created_at) VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (user_id, channel) DO NOTHING
"""
RELEASE_COUNTERS = """
UPDATE budget_counters b SET spent = b.spent - l.amount, updated_at = %(now)s
FROM budget_ledger l
WHERE l.call_id = %(call_id)s AND l.kind = 'reserve' AND b.scope = l.scope AND b.period_key = l.period_key
  AND b.shard = l.shard
  AND NOT EXISTS (SELECT 1 FROM budget_ledger r WHERE r.call_id = %(call_id)s AND r.kind = 'release')
"""
RELEASE_LEDGER = """
INSERT INTO budget_ledger (call_id, scope, period_key, shard, amount, kind, created_at)
SELECT call_id, scope, period_key, shard, -amount, 'release', %(now)s FROM budget_ledger
WHERE call_id = %(call_id)s AND kind = 'reserve'
  AND NOT EXISTS (SELECT 1 FROM budget_ledger r WHERE r.call_id = %(call_id)s AND r.kind = 'release')
"""
RELEASING = frozenset({"dead", "suppressed", "expired", "cancelled"})
WITHDRAWN_STATUS = {"expire": "expired", "cancel": "cancelled"}


async def release_budget(conn: Any, call_id: int, now: Any) -> None:
    """Give back what the call reserved (once: a release row makes a second call a no-op)."""
    params: dict[str, Any] = {"call_id": call_id, "now": now}
    await conn.execute(RELEASE_COUNTERS, params)
    await conn.execute(RELEASE_LEDGER, params)


@dataclass
class Dispatcher:
    pool: AsyncConnectionPool[Any]
    providers: dict[str, Provider]
    routes: dict[str, str]
    default_provider: str
    policy_store: PolicyStore
    clock: Clock
    max_attempts: int = 5
    quick_retries: int = 3
    retry_wait_s: float = 0.5
    backoff_s: float = 30.0
    lease_s: float = 60.0
    max_age_s: float = 86400.0
    state_pool: AsyncConnectionPool[Any] | None = None  # the contact rows; default: `pool`
    # Where delivered and withheld actions are announced as events (mcp_tools.announce); the
    # composition root opens it (the ingest transport). None: nothing is announced.
    events: EventSink | None = None
    points_echoed: bool = False  # the loyalty platform echoes awards: mca's event carries no points

    async def policy(self) -> Policy:
        """The policy in force, with the ops-store switches: the one place the dispatcher reads it."""
        return await effective_policy(self.pool, self.policy_store.current())

    def provider_for(self, kind: str) -> Provider:
        return self.providers[self.routes.get(kind, self.default_provider)]

    async def claim(self, limit: int) -> list[Claimed]:
        policy = await self.policy()
        if policy.kill_switch or policy.shadow:
            return []
        now = self.clock()
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    CLAIM, {"now": now, "lease": now + timedelta(seconds=self.lease_s), "n": limit}
                )
            ).fetchall()
        return [Claimed.from_row(r) for r in rows]

    async def _deliver(self, provider: Provider, item: OutboxItem) -> str | None:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self.quick_retries)),
            wait=wait_exponential(multiplier=self.retry_wait_s, max=max(self.retry_wait_s, 10)),
            retry=retry_if_exception_type(RetryableDelivery),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await provider.deliver(item)
        return None  # unreachable: reraise=True

    async def _rejudge(self, claimed: Claimed) -> Redecision:
        async with (self.state_pool or self.pool).connection() as state:
            contact = await load_contact(state, claimed.item.user_id)
        return rejudge(await self.policy(), claimed, contact, self.clock(), timedelta(seconds=self.max_age_s))

    async def process(self, claimed: Claimed) -> str:
        """Judge one claimed row again, deliver it if still allowed; record and return its status."""
        decision = await self._rejudge(claimed)
        if decision.kind in ("hold", "wait"):
            return await self._reschedule(claimed, decision)
        if decision.kind in WITHDRAWN_STATUS:
            return await self._withdraw(claimed, decision)
        item = claimed.item
        provider = self.provider_for(item.kind)
        try:
            ref = await self._deliver(provider, item)
        except SuppressDelivery as err:
            return await self._fail(item, provider.name, "suppressed", err, suppress=True)
        except PermanentDelivery as err:
            return await self._fail(item, provider.name, "dead", err)
        except RetryableDelivery as err:
            if item.attempts >= self.max_attempts:
                return await self._fail(item, provider.name, "dead", err)
            wait = err.retry_after or self.backoff_s * 2 ** (item.attempts - 1)
            return await self._fail(item, provider.name, "pending", err, retry_in=wait)
        except DeliveryError as err:  # pragma: no cover - every provider raises a subclass
            return await self._fail(item, provider.name, "dead", err)
        now = self.clock()
        async with self.pool.connection() as conn:
            await conn.execute(DELIVERED, (provider.name, ref, now, now, item.outbox_id))
        return "delivered"

    async def _fail(
        self,
        item: OutboxItem,
        provider: str,
        status: str,
        err: DeliveryError,
        *,
        suppress: bool = False,
        retry_in: float = 0.0,
    ) -> str:
        now = self.clock()
        log.warning("outbox %s via %s: %s (%s)", item.outbox_id, provider, status, err)
        async with self.pool.connection() as conn, conn.transaction():
            row = await (
                await conn.execute(
                    FAILED,
                    (
                        status,
                        provider,
                        str(err)[:500],
                        now + timedelta(seconds=retry_in),
                        now,
                        item.outbox_id,
                    ),
                )
            ).fetchone()
            if status in RELEASING and row is not None:
                await release_budget(conn, row["call_id"], now)
            if suppress:
                channel = channel_of(item) or item.kind
                await conn.execute(SUPPRESS, (item.user_id, channel, str(err)[:200], provider, now))
        return status

    async def _reschedule(self, claimed: Claimed, decision: Redecision) -> str:
        now = self.clock()
        due = decision.verdict.until or now
        async with self.pool.connection() as conn:
            await conn.execute(RESCHEDULE, (due, decision.reason, now, claimed.item.outbox_id))
        return "held" if decision.kind == "hold" else "waiting"

    async def _withdraw(self, claimed: Claimed, decision: Redecision) -> str:
        """End a row the guard would not send now: status + reason, budget back, an audit row."""
        status, verdict, item = WITHDRAWN_STATUS[decision.kind], decision.verdict, claimed.item
        now = self.clock()
        message = f"outbox {item.outbox_id} {status} at delivery: {verdict.message}"
        log.warning("%s (%s)", message, decision.reason)
        policy = await self.policy()
        ctx = CallContext("dispatcher", claimed.ctx.trigger, claimed.ctx.decision_id)
        async with self.pool.connection() as conn, conn.transaction():
            cur = await conn.execute(WITHDRAW, (status, decision.reason, message[:500], now, item.outbox_id))
            if cur.rowcount == 0:
                return "lost"  # another dispatcher took the row after our lease ran out
            await release_budget(conn, claimed.call_id, now)
            await conn.execute(
                UPDATE_CALL, {"status": status, "reason": decision.reason, "now": now, "key": item.idem_key}
            )
            args = claimed.arguments
            await ledger.audit_only(
                conn, policy, ctx, claimed.tool, item.user_id, args, verdict, now, claimed.call_id
            )
        return status

    async def run_once(self, limit: int = 20) -> dict[str, int]:
        """Claim up to `limit` rows and deliver them concurrently; counts per resulting status.
        Then announce what is delivered or withheld to the event stream, when a sink is given."""
        claimed = await self.claim(limit)
        statuses = await asyncio.gather(*(self.process(c) for c in claimed))
        counts: dict[str, int] = {}
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
        if self.events is not None:
            announced = await announce(self.pool, self.events, self.clock(), points_echoed=self.points_echoed)
            if announced:
                counts["announced"] = announced
        return counts


async def run_forever(dispatcher: Dispatcher, release_due: Any, stop: asyncio.Event, poll_s: float) -> None:
    """Release due deferred calls, deliver what is due, then wait `poll_s` (or until stopped)."""
    while not stop.is_set():
        try:
            released = await release_due()
            counts = await dispatcher.run_once()
        except Exception:  # keep the loop alive through a database blip; the rows stay claimable
            log.exception("dispatch round failed")
            released, counts = [], {}
        if released or counts:
            log.info("released %d deferred, delivered %s", len(released), counts)
        if counts:
            continue  # there may be more due rows: go again at once
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_s)
