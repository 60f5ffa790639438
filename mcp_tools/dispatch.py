"""The dispatcher: claims outbox rows, delivers them, records a status per row.

Claims are leases (`FOR UPDATE SKIP LOCKED`, then status `sending` until `lease_until`), so
several dispatchers share the work and a crashed one's rows are picked up again; the row's
`idem_key` goes to providers that accept an idempotency key. Per claim, tenacity retries
transient failures a few times with exponential backoff; after that the row waits
`dispatch_backoff_s * 2^(attempts-1)` (or the provider's Retry-After) and is dead-lettered
after `dispatch_max_attempts`. Suppressions (STOP, invalid number) are recorded and never
retried. A dead or suppressed row releases its budget reservation. Kill switch and shadow
mode stop all claims.
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

from mcp_tools.clock import Clock
from mcp_tools.errors import DeliveryError, PermanentDelivery, RetryableDelivery, SuppressDelivery
from mcp_tools.policy import PolicyStore
from mcp_tools.providers.base import OutboxItem, Provider
from mcp_tools.switches import effective_policy

log = logging.getLogger(__name__)

CLAIM = """
UPDATE outbox o
SET status = 'sending', attempts = o.attempts + 1, lease_until = %(lease)s, updated_at = %(now)s
WHERE o.outbox_id IN (
    SELECT outbox_id FROM outbox
    WHERE (status = 'pending' AND next_attempt_at <= %(now)s)
       OR (status = 'sending' AND lease_until < %(now)s)
    ORDER BY next_attempt_at LIMIT %(n)s FOR UPDATE SKIP LOCKED)
RETURNING outbox_id, idem_key, kind, user_id, payload, attempts
"""
DELIVERED = """
UPDATE outbox SET status = 'delivered', provider = %s, provider_ref = %s, delivered_at = %s, updated_at = %s,
       lease_until = NULL, last_error = NULL
WHERE outbox_id = %s
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
  AND NOT EXISTS (SELECT 1 FROM budget_ledger r WHERE r.call_id = %(call_id)s AND r.kind = 'release')
"""
RELEASE_LEDGER = """
INSERT INTO budget_ledger (call_id, scope, period_key, amount, kind, created_at)
SELECT call_id, scope, period_key, -amount, 'release', %(now)s FROM budget_ledger
WHERE call_id = %(call_id)s AND kind = 'reserve'
  AND NOT EXISTS (SELECT 1 FROM budget_ledger r WHERE r.call_id = %(call_id)s AND r.kind = 'release')
"""
CHANNEL_OF_KIND = {"sms": "sms"}


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

    def provider_for(self, kind: str) -> Provider:
        return self.providers[self.routes.get(kind, self.default_provider)]

    async def claim(self, limit: int) -> list[OutboxItem]:
        policy = await effective_policy(self.pool, self.policy_store.current())
        if policy.kill_switch or policy.shadow:
            return []
        now = self.clock()
        async with self.pool.connection() as conn:
            rows = await (
                await conn.execute(
                    CLAIM, {"now": now, "lease": now + timedelta(seconds=self.lease_s), "n": limit}
                )
            ).fetchall()
        return [
            OutboxItem(
                r["outbox_id"], r["idem_key"], r["kind"], r["user_id"], dict(r["payload"]), r["attempts"]
            )
            for r in rows
        ]

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

    async def process(self, item: OutboxItem) -> str:
        """Deliver one claimed item and record its new status (returned)."""
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
            if status in ("dead", "suppressed") and row is not None:
                params: dict[str, Any] = {"call_id": row["call_id"], "now": now}
                await conn.execute(RELEASE_COUNTERS, params)
                await conn.execute(RELEASE_LEDGER, params)
            if suppress:
                channel = CHANNEL_OF_KIND.get(item.kind, str(item.payload.get("channel", item.kind)))
                await conn.execute(SUPPRESS, (item.user_id, channel, str(err)[:200], provider, now))
        return status

    async def run_once(self, limit: int = 20) -> dict[str, int]:
        """Claim up to `limit` rows and deliver them concurrently; counts per resulting status."""
        items = await self.claim(limit)
        statuses = await asyncio.gather(*(self.process(item) for item in items))
        counts: dict[str, int] = {}
        for status in statuses:
            counts[status] = counts.get(status, 0) + 1
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
