"""ToolService: the one place a side-effecting tool call becomes a verdict.

Every transport (memory, stdio, HTTP), the deferred-call scheduler and `mca approve` come
through here: resolve the action from the stores, judge it (stateless checks), then settle it
in one ops transaction (`mcp_tools.ledger`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from mca.clock import Clock
from mca.db import reading
from mcp_tools import actions, ledger, scope
from mcp_tools.contract import Status
from mcp_tools.coupon_codes import coupon_code_for
from mcp_tools.errors import NotFound, ToolInputError
from mcp_tools.guard import Action, CallContext, Verdict, check_tool_allowed, judge
from mcp_tools.ledger_sql import UPDATE_CALL
from mcp_tools.outcome import Outcome, call_keys
from mcp_tools.policy import ALL_TOOLS, Policy, PolicyStore

log = logging.getLogger(__name__)

CLAIM_PENDING = """
SELECT p.pending_id, p.kind, p.status, t.call_id, t.idem_key, t.caller, t.trigger_name, t.decision_id,
       t.tool, t.arguments,
       EXISTS (SELECT 1 FROM pending_actions h WHERE h.call_id = t.call_id AND h.kind = 'hold'
               AND h.status = 'done' AND h.decided_by IS NOT NULL) AS approved
FROM pending_actions p JOIN tool_calls t ON t.call_id = p.call_id
WHERE p.pending_id = %s AND p.status = 'waiting'
FOR UPDATE OF p {skip}
"""
DUE_PENDING = """
SELECT pending_id FROM pending_actions WHERE status = 'waiting' AND kind = 'defer' AND due_at <= %s
ORDER BY due_at LIMIT %s
"""
CLOSE_PENDING = (
    "UPDATE pending_actions SET status = %s, outcome = %s, decided_by = %s, updated_at = %s "
    "WHERE pending_id = %s"
)


@dataclass
class ToolService:
    policy_store: PolicyStore
    state_pool: AsyncConnectionPool[Any]
    ops_pool: AsyncConnectionPool[Any]
    clock: Clock
    scopes: scope.JobScopes = field(default_factory=scope.JobScopes)

    def policy(self) -> Policy:
        return self.policy_store.current()

    async def check_read(self, tool: str, ctx: CallContext, arguments: dict[str, Any]) -> Outcome | None:
        """None when `ctx` may use the read tool; otherwise an audited denial. The switches
        (kill, shadow) concern actions only: a decision's job seen before needs no read."""
        policy = self.policy()
        bound = self.scopes.known(policy, ctx)
        if bound is None:
            async with reading(self.ops_pool) as conn:
                policy, bound = await scope.resolve(conn, policy, ctx, self.scopes)
        verdict = check_tool_allowed(policy, bound, tool, arguments.get("user_id"))
        if verdict is None:
            return None
        async with reading(self.ops_pool) as conn:
            await ledger.audit_only(
                conn, policy, bound, tool, arguments.get("user_id"), arguments, verdict, self.clock()
            )
        return Outcome(
            status=Status.DENIED,
            reason=verdict.reason,
            reasons=verdict.reasons,
            message=verdict.message,
            policy_version=policy.version_id,
        )

    async def visible_tools(self, ctx: CallContext) -> set[str]:
        """The tools `ctx` may call at all (what `tools/list` shows it)."""
        async with reading(self.ops_pool) as conn:
            policy, ctx = await scope.resolve(conn, self.policy(), ctx)
        return {tool for tool in ALL_TOOLS if check_tool_allowed(policy, ctx, tool) is None}

    async def build_action(
        self, policy: Policy, tool: str, args: dict[str, Any]
    ) -> tuple[Action, dict[str, Any]]:
        async with reading(self.state_pool) as state:  # reads only: no BEGIN/COMMIT around them
            return await actions.build(state, policy, tool, args, self.clock())

    async def act(self, tool: str, args: dict[str, Any], ctx: CallContext) -> Outcome:
        """Judge and record one side-effecting call; a retried identical call replays its result."""
        # No ops connection is held while the state store is read: on the embedded default both
        # are one pool, and holding one while waiting for another deadlocks a busy pool. The
        # scope read (and an early refusal's audit row) needs no transaction of its own.
        async with reading(self.ops_pool) as conn:
            policy, ctx = await scope.resolve(conn, self.policy(), ctx, self.scopes)
            key, earlier = self.keys(policy, ctx, tool, args)
            recent = await self._recent(conn, policy, ctx, earlier)
            if recent is not None:
                return recent
            early = check_tool_allowed(policy, ctx, tool, args.get("user_id")) or (
                Verdict("deny", ["kill_switch"]) if policy.kill_switch else None
            )
            if early is not None:
                # Refused before touching the state store: a caller without the tool learns nothing.
                replay = await ledger.find_call(conn, key)
                if replay is not None:
                    return replay
                await ledger.audit_only(
                    conn, policy, ctx, tool, args.get("user_id"), args, early, self.clock()
                )
                return Outcome(
                    status=Status.DENIED,
                    reason=early.reason,
                    reasons=early.reasons,
                    message=early.message,
                    policy_version=policy.version_id,
                )
        try:
            action, contact = await self.build_action(policy, tool, args)
        except ToolInputError as err:
            return Outcome(
                status=Status.ERROR, reason=err.code, reasons=[err.code], message=str(err), field=err.field
            )
        with_code(action, key)
        now = self.clock()
        stateless = judge(policy, ctx, action, contact, now)
        async with self.ops_pool.connection() as conn:
            return await ledger.decide_new(conn, policy, ctx, action, stateless, now, key)

    async def _recent(
        self, conn: Any, policy: Policy, ctx: CallContext, earlier: str | None
    ) -> Outcome | None:
        """The previous window's identical call, when it is still younger than the window."""
        if earlier is None or (replay := await ledger.find_call(conn, earlier)) is None:
            return None
        window = timedelta(seconds=policy.caller(ctx.caller).replay_window_s)
        return replay if replay.replayed_from and replay.replayed_from > self.clock() - window else None

    def keys(
        self, policy: Policy, ctx: CallContext, tool: str, args: dict[str, Any]
    ) -> tuple[str, str | None]:
        window = policy.caller(ctx.caller).replay_window_s
        return call_keys(ctx.caller, ctx.decision_id, ctx.idempotency_key, tool, args, self.clock(), window)

    async def release(
        self, pending_id: int, *, by: str, approve: bool = False, skip_locked: bool = False
    ) -> Outcome | None:
        """Re-judge a waiting call: a due deferral (scheduler) or an approved hold (operator).

        Returns None when the row is taken by another worker (skip_locked) or not waiting.
        """
        async with self.ops_pool.connection() as conn, conn.transaction():
            sql = CLAIM_PENDING.format(skip="SKIP LOCKED" if skip_locked else "")
            row = await (await conn.execute(sql, (pending_id,))).fetchone()
            if row is None:
                if skip_locked:
                    return None
                raise NotFound(f"no waiting action with id {pending_id}")
            if approve and row["kind"] != "hold":
                raise NotFound(f"action {pending_id} is deferred, not held for approval")
            ctx = CallContext(
                caller=row["caller"],
                trigger=row["trigger_name"],
                decision_id=row["decision_id"],
                approved=approve or bool(row["approved"]),
            )
            policy, ctx = await scope.resolve(conn, self.policy(), ctx)
            now = self.clock()
            try:
                action, contact = await self.build_action(policy, row["tool"], dict(row["arguments"]))
                with_code(action, row["idem_key"])
            except ToolInputError as err:
                verdict = Verdict("deny", [err.code], detail=str(err))
                await conn.execute(
                    UPDATE_CALL, {"status": "denied", "reason": err.code, "now": now, "key": row["idem_key"]}
                )
                outcome = Outcome(
                    status=Status.DENIED,
                    reason=err.code,
                    reasons=[err.code],
                    message=str(err),
                    call_id=row["call_id"],
                )
                await ledger.audit_only(
                    conn, policy, ctx, row["tool"], None, dict(row["arguments"]), verdict, now, row["call_id"]
                )
            else:
                stateless = judge(policy, ctx, action, contact, now)
                outcome = await ledger.settle(
                    conn, policy, ctx, action, stateless, now, key=row["idem_key"], first=False
                )
                outcome.call_id = row["call_id"]
            await conn.execute(
                CLOSE_PENDING,
                (
                    "done",
                    Jsonb(outcome.to_dict()),
                    by if row["kind"] == "hold" else None,
                    now,
                    pending_id,
                ),
            )
            return outcome

    async def reject(self, pending_id: int, *, by: str) -> Outcome:
        policy = self.policy()
        async with self.ops_pool.connection() as conn, conn.transaction():
            row = await (await conn.execute(CLAIM_PENDING.format(skip=""), (pending_id,))).fetchone()
            if row is None or row["kind"] != "hold":
                raise NotFound(f"no action held for approval with id {pending_id}")
            now = self.clock()
            ctx = CallContext(
                caller=f"operator:{by}", trigger=row["trigger_name"], decision_id=row["decision_id"]
            )
            verdict = Verdict("deny", ["rejected"], detail=f"Rejected by {by}.")
            outcome = Outcome(
                status=Status.DENIED,
                reason="rejected",
                reasons=["rejected"],
                message=verdict.message,
                call_id=row["call_id"],
            )
            await conn.execute(
                UPDATE_CALL, {"status": "rejected", "reason": "rejected", "now": now, "key": row["idem_key"]}
            )
            await conn.execute(CLOSE_PENDING, ("rejected", Jsonb(outcome.to_dict()), by, now, pending_id))
            await ledger.audit_only(
                conn, policy, ctx, row["tool"], None, dict(row["arguments"]), verdict, now, row["call_id"]
            )
            return outcome

    async def release_due(self, limit: int = 50) -> list[Outcome]:
        """Re-judge every deferred call whose time has come (run by `mca dispatch`)."""
        async with self.ops_pool.connection() as conn:
            rows = await (await conn.execute(DUE_PENDING, (self.clock(), limit))).fetchall()
        outcomes = []
        for row in rows:
            outcome = await self.release(int(row["pending_id"]), by="scheduler", skip_locked=True)
            if outcome is not None:
                outcomes.append(outcome)
        return outcomes


def with_code(action: Action, key: str) -> None:
    """A coupon's code, one per call (the call key covers decision, tool and arguments): a
    redemption names its decision, and a retried or released call sends the same code."""
    if action.kind == "coupon" and action.asset_id:
        action.payload["coupon_code"] = coupon_code_for(key, action.asset_id)
