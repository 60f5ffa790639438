"""`mca explain`: the story of one decision, as a person would read it."""

from __future__ import annotations

import json
from typing import Any

from mcp_tools.contract import Status, Tool

OUTCOMES = {
    "acted": "acted",
    "nothing": "decided to do nothing",
    "limit": "stopped at a limit",
    "failed": "failed",
}


def _money(value: Any) -> str:
    try:
        return f"${float(value):,.2f}"
    except (TypeError, ValueError):
        return "?"


def _wake(event: dict[str, Any]) -> str:
    if event.get("type") == "opportunity":
        facts = ", ".join(f"{k}={v}" for k, v in sorted((event.get("facts") or {}).items()))
        return f"scheduled query '{event.get('opportunity')}' found this customer ({facts})"
    parts = [f"a '{event.get('type')}' event"]
    if event.get("sku") or event.get("category"):
        parts.append(
            f"for {event.get('sku') or ''} {('(' + event['category'] + ')') if event.get('category') else ''}"
        )
    if event.get("value") is not None:
        parts.append(f"worth {_money(event['value'])}")
    score = (event.get("properties") or {}).get("score")
    if score is not None:
        parts.append(f"with score {score}")
    if event.get("event_id"):
        parts.append(f"[event {event['event_id']}]")
    return " ".join(p.strip() for p in parts if p.strip())


def _knew(context: dict[str, Any] | None) -> str:
    if not context:
        return "no live context (unknown customer)"
    p, s = context.get("profile") or {}, context.get("stats") or {}
    consent = p.get("consent") or {}
    channels = [c for c in ("email", "sms", "push") if consent.get(c)] or ["none"]
    bits = [
        f"{p.get('first_name') or 'unnamed'}, {p.get('tier') or 'no'} tier",
        f"{s.get('purchases', 0)} purchases, lifetime {_money(s.get('lifetime_value'))}",
        f"{s.get('points_balance', 0)} points",
        f"churn score {s.get('churn_score') if s.get('churn_score') is not None else 'n/a'}",
        f"{s.get('open_tickets', 0)} open tickets",
        f"consented: {', '.join(channels)}",
        f"{len(context.get('recent_events') or [])} recent events",
    ]
    return "; ".join(bits)


def _args(arguments: dict[str, Any] | None) -> str:
    shown = {k: v for k, v in (arguments or {}).items() if k not in ("user_id", "reason")}
    return ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in shown.items())


def _result(step: dict[str, Any]) -> str:
    result = step.get("result") or {}
    verdict = step.get("verdict") or "?"
    if step.get("tool_name") == Tool.SEARCH_ASSETS and result.get("assets") is not None:
        found = result["assets"]
        top = ", ".join(f"{a['asset_id']} '{a['title']}' ({a.get('score')})" for a in found[:3])
        return f"found {len(found)}: {top}" if found else "found nothing"
    if step.get("tool_name") == Tool.GET_USER_CONTEXT and verdict == Status.OK:
        return "read the context"
    text = verdict
    if step.get("reason_code"):
        text += f" ({step['reason_code']})"
    if result.get("message"):
        text += f": {result['message']}"
    for key in ("outbox_id", "approval_id", "until"):
        if result.get(key) is not None:
            text += f" [{key} {result[key]}]"
    if result.get("replayed"):
        text += " [replayed: an earlier attempt already did this]"
    return text


def _group(d: dict[str, Any]) -> str:
    group = d.get("experiment_group")
    if group is None:
        return "outside any experiment"
    meaning = {"holdout": "never contacted", "control": "decided, nothing sent", "treatment": "acted on"}
    return f"{group} ({meaning.get(group, group)}) in experiment {d.get('experiment')}"


def _results(actions: list[dict[str, Any]] | None) -> list[str]:
    if actions is None:
        return []
    if not actions:
        return ["  Results: no action announced yet"]
    lines = ["  Results:"]
    for a in actions:
        seen = [
            k for k in ("delivered", "opened", "clicked", "redeemed", "converted", "unsubscribed") if a.get(k)
        ]
        state = "window open" if a.get("pending") else "window closed"
        revenue = f", revenue {_money(a['revenue'])}" if a.get("converted") else ""
        what = ", ".join(seen) or "nothing yet"
        lines.append(f"    {a['action_type']} {a.get('asset') or ''}: {what}{revenue} ({state})")
    return lines


def _price(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return f"${v:,.0f} " if v == int(v) else f"${v:,.2f} "


def allocation_story(allocation: dict[str, Any] | None) -> str | None:
    """The allocator's choice in plain words, e.g. "chose the $10 stove voucher: 4.1% expected
    conversion, 18% chance it is the best (bandit, 6 allowed candidates, 1 refused by the guard)"."""
    if not allocation:
        return None
    rows = allocation.get("candidates") or []
    allowed = [c for c in rows if "refused" not in c]
    refused = len(rows) - len(allowed)
    chosen: dict[str, Any] = next((c for c in allowed if c.get("arm") == allocation.get("arm")), {})
    name = chosen.get("label") or allocation.get("arm")
    facts = []
    if chosen.get("expected_conversion") is not None:
        facts.append(f"{chosen['expected_conversion']:.1%} expected conversion")
    if chosen.get("probability_best") is not None:
        facts.append(f"{chosen['probability_best']:.0%} chance it is the best")
    facts.append(f"chosen with probability {float(allocation.get('propensity') or 0):.0%}")
    plural = "s" if len(allowed) != 1 else ""
    how = f"{allocation.get('mode')}, {len(allowed)} allowed candidate{plural}"
    if refused:
        how += f", {refused} refused by the guard"
    return f"chose the {_price(chosen.get('value'))}{name}: {', '.join(facts)} ({how})"


def explain(decision: dict[str, Any]) -> str:
    d = decision
    lines = [
        f"Decision {d['decision_id']}: trigger '{d['trigger_name']}' for customer {d['user_id']}"
        + (f" (attempt {d['attempt']})" if d.get("attempt", 1) > 1 else ""),
        f"  When:    {d['started_at']}, took {d['latency_ms']:.0f} ms",
        f"  Brain:   {d['brain']} ({d['model']}), prompt version {d['prompt_version']}",
        f"  Woke on: {_wake(d.get('trigger_event') or {})}",
        f"  Goal:    {d['goal']}; tools allowed: {', '.join(d.get('allowed_tools') or [])}",
        f"  Knew:    {_knew(d.get('context'))}",
    ]
    calls = [s for s in d.get("steps", []) if s["kind"] == "tool_call"]
    if calls:
        lines.append("  Did:")
        for n, s in enumerate(calls, start=1):
            lines.append(f"    {n}. {s['tool_name']}({_args(s.get('arguments'))}) -> {_result(s)}")
    else:
        lines.append("  Did:     no tool calls")
    chose = allocation_story(d.get("allocation"))
    if chose is not None:
        lines.append(f"  Chose:   {chose}")
    lines.append(f"  Outcome: {OUTCOMES.get(d['outcome'], d['outcome'])}")
    lines.append(f"  Group:   {_group(d)}")
    lines.extend(_results(d.get("outcomes")))
    lines.append(f"  Why:     {d['rationale']}")
    lines.append(
        f"  Cost:    {d['model_calls']} model calls, {d['tool_calls']} tool calls, "
        f"{d['tokens_in']} tokens in / {d['tokens_out']} out"
    )
    return "\n".join(lines)
