"""What one call may do, read from the ops store in one round trip: the switches in force and the
scope of the decision the call belongs to.

A decision's allowed tools are the intersection of its trigger's tools (the triggers file) and
the policy's. The trigger's tools are recorded on the decision's job (`agent_jobs.tools`,
written by the trigger service when it enqueues the job from the triggers file), and the guard
reads them here by the decision id the call carries. We chose this over passing the tools in
request meta because the stored job is the record of what the trigger granted: nothing a caller
sends, not even a trusted caller's meta, can widen it, and the job also fixes the decision's
trigger and customer. It costs no extra round trip: the switches are read in the same query,
and the lookup is an index scan (`agent_jobs_decision`).

Only a trusted caller's decision id is looked up (its meta already names the decision); for
other callers a decision id is only an idempotency key, and their tools are their `callers:`
entry. A decision id that names no job (a desktop assistant trusted as the agent, tests) is
judged by the policy alone, as before.

The job also carries the customer's experiment group: a control (or holdout) decision's calls
are judged in shadow mode, so the experiment's "decided but not sent" cannot leak a send.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from typing import Any

import psycopg

from mcp_tools.guard import CallContext
from mcp_tools.policy import Policy
from mcp_tools.switches import READ_AS_JSON, apply_switches

WITHHELD_GROUPS = frozenset({"control", "holdout"})

# The switches and the decision's job, as columns a caller may extend (`mcp_tools.dry_run`
# reads the budget counters in the same statement).
SCOPE_COLUMNS = f"""{READ_AS_JSON} AS switches,
       (SELECT jsonb_build_object('tools', to_jsonb(j.tools), 'trigger', j.trigger_name, 'user_id', j.user_id,
                                  'group', j.experiment_group)
        FROM agent_jobs j WHERE j.decision_id = %(decision_id)s LIMIT 1) AS scope"""
SCOPE = f"SELECT {SCOPE_COLUMNS}"


def lookup_id(policy: Policy, ctx: CallContext) -> str | None:
    """The decision id whose job is looked up: only a trusted caller's."""
    return ctx.decision_id if policy.caller(ctx.caller).trust_meta else None


class JobScopes:
    """What each seen decision's job fixed when it was enqueued (trigger, customer, tools,
    experiment group), by decision id. A job's row never changes them, so a read tool, which
    the switches do not concern, is judged without a round trip once its decision was seen.
    Bounded: the least recently seen go first. Decisions without a job are not kept."""

    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._scopes: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def get(self, decision_id: str) -> dict[str, Any] | None:
        scope = self._scopes.get(decision_id)
        if scope is not None:
            self._scopes.move_to_end(decision_id)
        return scope

    def put(self, decision_id: str, scope: dict[str, Any]) -> None:
        self._scopes[decision_id] = scope
        self._scopes.move_to_end(decision_id)
        while len(self._scopes) > self._size:
            self._scopes.popitem(last=False)

    def known(self, policy: Policy, ctx: CallContext) -> CallContext | None:
        """`ctx` bound to its job without a read, when no job is looked up or it was seen."""
        lookup = lookup_id(policy, ctx)
        if lookup is None:
            return ctx
        scope = self.get(lookup)
        return None if scope is None else bound_to(scope, ctx)


async def resolve(
    conn: psycopg.AsyncConnection[Any], policy: Policy, ctx: CallContext, seen: JobScopes | None = None
) -> tuple[Policy, CallContext]:
    """The policy with the stored switches in force, and `ctx` bound to its decision's job
    (kept in `seen` when given)."""
    lookup = lookup_id(policy, ctx)
    row = await (await conn.execute(SCOPE, {"decision_id": lookup})).fetchone()
    assert row is not None
    scope = _columns(row)[1]
    if seen is not None and lookup is not None and scope:
        seen.put(lookup, scope)
    return bind(row, policy, ctx)


def _columns(row: Any) -> tuple[Any, Any]:
    """The switches and the job's scope of a row of SCOPE_COLUMNS, whatever the row factory."""
    return (row["switches"], row["scope"]) if isinstance(row, dict) else (row[0], row[1])


def bind(row: Any, policy: Policy, ctx: CallContext) -> tuple[Policy, CallContext]:
    """What a row of SCOPE_COLUMNS says: the effective policy, and `ctx` bound to the job."""
    switches, scope = _columns(row)
    effective = apply_switches(policy, switches or {})
    if not scope:
        return effective, ctx
    if scope.get("group") in WITHHELD_GROUPS and not effective.shadow:
        # A control decision is judged in full and recorded, and nothing is sent: shadow mode
        # for this one decision. The holdout never reaches the brain (agent.worker); should one
        # of its calls arrive anyway, it is withheld the same way.
        effective = effective.model_copy(update={"shadow": True})
    return effective, bound_to(scope, ctx)


def bound_to(scope: dict[str, Any], ctx: CallContext) -> CallContext:
    return replace(
        ctx, trigger=str(scope["trigger"]), subject=str(scope["user_id"]), tools=frozenset(scope["tools"])
    )
