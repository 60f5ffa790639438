"""Choosing the offer among the brain's candidates: the guard's dry run, then the allocator.

For a trigger whose selection mode is `bandit` or `explore`, the decision's first offer call is
not made as the brain proposed it. Its candidates (the rules brain lists them; for an LLM they
are the assets of its search results) are judged by the guard's dry run (`mcp_tools.dry_run`,
nothing reserved); refused ones are dropped and recorded; `learn.allocate` picks one of the
rest from the arm posteriors (`learn.arm_cache`, never a population scan on the decision path);
the allocation is committed to `decision_allocations` before the chosen call goes through the
normal guarded tool call, so the action event it produces carries the propensity. When nothing
is allowed, nothing is sent. One allocation per decision: a later offer in the same decision is
refused, so a logged propensity always belongs to the arm that was sent.

A retried decision (crash, lease) reuses its stored allocation, so the retry makes the same call
and the tool server's idempotency key turns it into a replay instead of a second send.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from agent.model import Brief, Candidate, Message, ToolCall
from learn.allocate import DEFAULT_FLOOR, Allocation, SelectionMode, allocate
from learn.arm_cache import ArmCache
from mca.clock import Clock
from mcp_tools.contract import Outcome, Reason, Status, Tool
from mcp_tools.dry_run import DryVerdict, dry_run
from mcp_tools.guard import CallContext
from mcp_tools.service import ToolService

# The offers the allocator chooses among: one asset per candidate.
OFFER_TOOLS = frozenset({Tool.SEND_COUPON.value})
ALLOCATION_DRAWS = 300  # joint posterior draws per decision for P(best): ~0.2 ms for 10 arms

# The allocation's commit need not wait for its WAL flush: the chosen call's guard transaction,
# on the same ops server right after, commits synchronously, and a flush covers every earlier
# WAL record. A crash before that loses an allocation whose call never went out, and the retried
# decision allocates afresh; a crash after it keeps both. The setting is local to the statement's
# own implicit transaction (autocommit), so one statement, one round trip, and one fsync saved.
INSERT_ALLOCATION = """
INSERT INTO decision_allocations (decision_id, arm, propensity, mode, candidates, created_at)
SELECT %(decision_id)s, %(arm)s, %(propensity)s, %(mode)s, %(candidates)s, %(now)s
FROM (SELECT set_config('synchronous_commit', 'off', true)) AS without_flush_wait
ON CONFLICT (decision_id) DO NOTHING
RETURNING decision_id
"""
STORED_ALLOCATION = (
    "SELECT arm, propensity, mode, candidates FROM decision_allocations WHERE decision_id = %s"
)


def arm_of(asset_id: str, channel: str | None) -> str:
    """An arm as the attribution views name it: `asset:channel`."""
    return f"{asset_id}:{channel or ''}"


def candidates_from_search(call: ToolCall, messages: Sequence[Message]) -> list[Candidate]:
    """An LLM's candidates: its own call first, then every other coupon its searches returned."""
    first = Candidate(call.name, dict(call.arguments), str(call.arguments.get("asset_id")))
    out, seen = [first], {str(call.arguments.get("asset_id"))}
    for m in messages:
        if m.get("role") != "tool" or m.get("name") != Tool.SEARCH_ASSETS:
            continue
        try:
            assets = json.loads(m.get("content") or "{}").get("assets") or []
        except (json.JSONDecodeError, AttributeError):
            continue
        for a in assets:
            aid = str(a.get("asset_id"))
            if aid not in seen and a.get("kind", "coupon") == "coupon":
                seen.add(aid)
                out.append(
                    Candidate(call.name, {**call.arguments, "asset_id": aid}, str(a.get("title") or aid))
                )
    return out


@dataclass
class Allocator:
    """What every decision's chooser shares: the guard's service, the arm cache, the randomness."""

    service: ToolService
    cache: ArmCache
    ops_pool: AsyncConnectionPool[Any]
    clock: Clock
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    floor: float = DEFAULT_FLOOR
    draws: int = ALLOCATION_DRAWS
    caller: str = "agent"
    # When a list: the ms of each decision's allocation step (dry run, draw, logged row), for benches.
    timings: list[float] | None = None

    def chooser(self, brief: Brief, mode: SelectionMode) -> Chooser:
        return Chooser(self, brief, mode)


@dataclass
class Chooser:
    """One decision's allocation: at most one, made at the first offer call."""

    allocator: Allocator
    brief: Brief
    mode: SelectionMode
    allocation: dict[str, Any] | None = None
    attempted: bool = False
    refusals: dict[str, Outcome] = field(default_factory=dict)  # call id -> the loop's answer

    def annotate(self, tool: str, result: dict[str, Any]) -> dict[str, Any]:
        """Search results with each asset's expected conversion and its uncertainty (95% interval)."""
        assets = result.get("assets")
        if tool != Tool.SEARCH_ASSETS or not isinstance(assets, list) or not assets:
            return result
        channel = self.allocator.service.policy().coupons.channel
        arms = [arm_of(str(a.get("asset_id")), channel) for a in assets]
        posts = self.allocator.cache.current().posteriors(self.brief.goal, arms)
        shown = []
        for a, p in zip(assets, posts, strict=True):
            low, high = p.interval()
            shown.append({**a, "expected_conversion": round(p.mean, 4),
                          "conversion_interval": [round(low, 4), round(high, 4)]})  # fmt: skip
        return {**result, "assets": shown}

    async def choose(
        self, call: ToolCall, proposed: Sequence[Candidate], messages: Sequence[Message]
    ) -> ToolCall:
        """The call to make instead of `call`; a refusal to answer it with is left in `refusals`."""
        if call.name not in OFFER_TOOLS or call.error:
            return call
        if self.attempted:
            self.refusals[call.id] = Outcome(
                status=Status.ERROR, reason=Reason.TOOL_CALL_LIMIT,
                message="this decision's offer was already chosen by the allocator; no second offer",
            )  # fmt: skip
            return call
        self.attempted = True
        started = time.perf_counter()
        try:
            return await self._choose(call, proposed, messages)
        finally:
            if self.allocator.timings is not None:
                self.allocator.timings.append((time.perf_counter() - started) * 1000)

    async def _choose(
        self, call: ToolCall, proposed: Sequence[Candidate], messages: Sequence[Message]
    ) -> ToolCall:
        candidates = [c for c in proposed if c.tool in OFFER_TOOLS] or candidates_from_search(call, messages)
        if not any(c.arguments == call.arguments for c in candidates):
            candidates.insert(
                0, Candidate(call.name, dict(call.arguments), str(call.arguments.get("asset_id")))
            )
        verdicts = await dry_run(
            self.allocator.service, self._ctx(), [(c.tool, c.arguments) for c in candidates]
        )
        allowed = [(c, v) for c, v in zip(candidates, verdicts, strict=True) if not v.refused]
        refused = [(c, v) for c, v in zip(candidates, verdicts, strict=True) if v.refused]
        if not allowed:
            names = ", ".join(f"{c.arguments.get('asset_id')} ({v.reason})" for c, v in refused)
            first = verdicts[0]
            self.refusals[call.id] = Outcome(
                status=Status.DENIED, reason=first.reason, reasons=list(first.reasons),
                message=f"{first.message} The guard would refuse every candidate ({names}); nothing is sent.",
            )  # fmt: skip
            return call
        chosen = await self._allocate(allowed, refused)
        return ToolCall(id=call.id, name=chosen.tool, arguments=dict(chosen.arguments))

    def _ctx(self) -> CallContext:
        b = self.brief
        return CallContext(
            caller=self.allocator.caller, trigger=b.trigger, decision_id=b.decision_id, subject=b.user_id
        )

    async def _allocate(
        self, allowed: list[tuple[Candidate, DryVerdict]], refused: list[tuple[Candidate, DryVerdict]]
    ) -> Candidate:
        a = self.allocator
        arms = [
            arm_of(str(c.arguments.get("asset_id")), v.action.channel if v.action else None)
            for c, v in allowed
        ]
        posts = a.cache.current().posteriors(self.brief.goal, arms)
        pick = allocate(arms, self.mode, posts, rng=a.rng, floor=a.floor, draws=a.draws)
        log = self._log(pick, allowed, refused, posts)
        # One statement on the usual path: the insert; only a retried decision, whose allocation
        # is already stored, reads it back and makes the same choice.
        async with a.ops_pool.connection() as conn:
            params = {**log, "candidates": Jsonb(log["candidates"]), "now": a.clock()}
            if await (await conn.execute(INSERT_ALLOCATION, params)).fetchone() is None:
                row = await (await conn.execute(STORED_ALLOCATION, (self.brief.decision_id,))).fetchone()
                if row is not None and row["arm"] in arms:
                    self.allocation = dict(row)
                    return allowed[arms.index(row["arm"])][0]
        self.allocation = log
        return allowed[arms.index(pick.chosen)][0]

    def _log(
        self, pick: Allocation, allowed: list[tuple[Candidate, DryVerdict]],
        refused: list[tuple[Candidate, DryVerdict]], posts: Sequence[Any],
    ) -> dict[str, Any]:  # fmt: skip
        rows: list[dict[str, Any]] = []
        for entry, (c, v), p in zip(pick.as_log()["candidates"], allowed, posts, strict=True):  # type: ignore[call-overload]
            value = v.action.cost if v.action else None
            title = v.action.payload.get("title") if v.action else None
            price = None if value is None else float(value)
            rows.append(
                {**entry, "label": str(title or c.label), "value": price, "expected_conversion": p.mean}
            )
        for c, v in refused:
            rows.append({"arm": arm_of(str(c.arguments.get("asset_id")), None), "label": c.label,
                         "probability": 0.0, "refused": v.reason})  # fmt: skip
        return {"decision_id": self.brief.decision_id, "arm": pick.chosen, "propensity": pick.propensity,
                "mode": pick.mode.value, "candidates": rows}  # fmt: skip
