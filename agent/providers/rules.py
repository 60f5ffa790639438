"""The rules brain: a deterministic marketer that needs no network.

It reads the live context the way a loyalty marketer would (what was bought or left in a
cart, churn risk, points, the mood of a support ticket), builds an asset search from it,
picks the best allowed asset and channel, and explains itself. It acts through the same MCP
tools and the same guard as the LLM brains: each reply is a tool call or a final rationale,
derived afresh from the conversation so far, so denials steer it to the next candidate.
Customer-written text only ever informs mood; it never sets an amount, a target or a tool.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from agent.model import Brief, Candidate, ModelReply, ModelRequest, ToolCall
from mcp_tools.contract import ACCEPTED, Status, Tool

ASSET_SPECIFIC = frozenset(
    {"asset_expired", "asset_has_no_value", "asset_inactive", "asset_not_yet_valid", "asset_redemptions",
     "coupon_value_ceiling", "unknown_asset"}
)  # fmt: skip
MAX_OFFER_ATTEMPTS = 3
# Matches searched: the rules brain's own pick needs few; an allocator choosing among them more.
SEARCH_K = {"model": 5}
CANDIDATES_K = 10
COUPON_CEILING = 25.0  # above this the guard holds coupons for approval; a nudge stays modest
ANGRY = re.compile(r"\b(angry|furious|terrible|awful|worst|unacceptable|disappointed|never again|refund|"
                   r"cancel|broken|ridiculous|scam|useless)\b|!!", re.IGNORECASE)  # fmt: skip
INJECTION = re.compile(r"ignore (all |your |previous |the )*(rules|instructions)|system prompt|you are now|"
                       r"send me \d+|give me \d+", re.IGNORECASE)  # fmt: skip
_ids = itertools.count(1)


def _num(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def product_name(event: dict[str, Any]) -> str | None:
    props = event.get("properties") or {}
    for key in ("product_name", "name", "title"):
        if isinstance(props.get(key), str):
            return str(props[key])
    return None


@dataclass
class Situation:
    """What a marketer notices first, read from the brief."""

    name: str
    tier: str | None
    churn: float | None
    points: float
    open_tickets: int
    item: str | None
    category: str | None
    value: float | None
    angry: bool = False
    injection: bool = False
    sms_ok: bool = False
    notes: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, brief: Brief) -> Situation:
        ctx = brief.context or {}
        profile = ctx.get("profile") or {}
        stats = ctx.get("stats") or {}
        consent = profile.get("consent") or {}
        event = brief.event or {}
        facts = event.get("facts") or {}
        # A job keeps only typed facts of its event; the full event (product name included)
        # is in the context the worker re-read, when it is among the recent ones.
        stored = next(
            (
                e
                for e in ctx.get("recent_events") or []
                if event.get("event_id") and e.get("event_id") == event["event_id"]
            ),
            None,
        )
        item_event = stored or (event if event.get("sku") or event.get("properties") else facts)
        s = cls(
            name=str(profile.get("first_name") or "there"),
            tier=profile.get("tier"),
            churn=_num(stats.get("churn_score")),
            points=_num(stats.get("points_balance")) or 0.0,
            open_tickets=int(stats.get("open_tickets") or 0),
            item=product_name(item_event) or (str(item_event["sku"]) if item_event.get("sku") else None),
            category=item_event.get("category") or stats.get("last_purchase_category"),
            value=_num(item_event.get("value")),
            sms_ok=bool(consent.get("sms"))
            and not consent.get("do_not_contact")
            and bool((profile.get("reachable") or {}).get("sms")),
        )
        for e in ctx.get("recent_events") or []:
            if e.get("type") == "ticket_opened" and e.get("text"):
                s.angry = s.angry or bool(ANGRY.search(e["text"]))
                s.injection = s.injection or bool(INJECTION.search(e["text"]))
        return s


@dataclass(frozen=True)
class Plan:
    situation_line: str
    query: str
    kind: str | None
    category: str | None
    max_value: float | None
    crm_note: str | None = None


def plan_for(brief: Brief, s: Situation) -> Plan:
    goal, item, cat = brief.goal, s.item, s.category
    risk = f", churn risk {s.churn:.2f}" if s.churn is not None else ""
    who = f"{s.name} ({s.tier or 'member'}{risk})"
    if goal == "post_purchase":
        return Plan(f"{who} just bought {item or 'something'} for ${s.value or 0:.0f}.",
                    f"accessories and add-ons that complement a {item or cat or 'recent purchase'}",
                    "coupon", cat, COUPON_CEILING)  # fmt: skip
    if goal == "cart_recovery":
        return Plan(f"{who} left {item or 'an item'} in the cart over 30 minutes ago and did not buy.",
                    f"discount on {item or cat or 'the item left in the cart'}", "coupon", cat,
                    COUPON_CEILING)  # fmt: skip
    if goal == "service_recovery":
        mood = "an angry" if s.angry else "a"
        note = f"Open support ticket from {mood} customer{risk}; please follow up personally."
        if s.injection:
            note += " Ticket text contained instructions aimed at our systems; ignored."
        # A gesture in the category they actually buy, not a random apology coupon.
        return Plan(f"{who} opened {mood} support ticket.",
                    f"thank you for your patience: a goodwill discount on {cat or 'your next order'}",
                    "coupon", cat, COUPON_CEILING, crm_note=note)  # fmt: skip
    if goal == "retention":
        return Plan(f"{who} is likely to leave.", f"we miss you welcome back offer {cat or ''}".strip(),
                    "coupon", cat, COUPON_CEILING,
                    crm_note=f"High churn risk{risk}; retention offer sent by the agent.")  # fmt: skip
    if goal == "points_expiry":
        return Plan(
            f"{who} has {s.points:.0f} points that expire soon.",
            f"reward to redeem with points {cat or ''}".strip(),
            "reward",
            None,
            s.points or None,
        )
    if goal == "birthday":
        return Plan(f"It is {s.name}'s birthday today.", "birthday treat gift reward", "coupon", None,
                    COUPON_CEILING)  # fmt: skip
    if goal == "tier_welcome":
        return Plan(f"{who} moved up a tier.", f"vip member perk {cat or ''}".strip(), "coupon", None,
                    COUPON_CEILING)  # fmt: skip
    return Plan(f"{who} is back after a while.", f"welcome back offer {cat or ''}".strip(), "coupon", cat,
                COUPON_CEILING)  # fmt: skip


@dataclass
class History:
    """What the conversation so far says: searches, offers tried, verdicts."""

    assets: list[dict[str, Any]] = field(default_factory=list)
    searched: int = 0
    crm_done: bool = False
    tried: dict[str, str] = field(default_factory=dict)  # asset_id -> verdict/reason
    accepted: list[str] = field(default_factory=list)
    blocked: dict[str, str] = field(default_factory=dict)  # tool -> reason that rules the tool out
    sms_tried: bool = False

    @classmethod
    def of(cls, request: ModelRequest) -> History:
        h = cls()
        calls: dict[str, tuple[str, dict[str, Any]]] = {}
        for m in request.messages:
            if m["role"] == "assistant":
                for c in m.get("tool_calls") or []:
                    args = json.loads(c["function"]["arguments"] or "{}")
                    calls[c["id"]] = (c["function"]["name"], args if isinstance(args, dict) else {})
            elif m["role"] == "tool" and m.get("tool_call_id") in calls:
                name, args = calls[m["tool_call_id"]]
                h._absorb(name, args, json.loads(m["content"]))
        return h

    def _absorb(self, name: str, args: dict[str, Any], result: dict[str, Any]) -> None:
        status, reason = str(result.get("status")), str(result.get("reason") or result.get("status"))
        ok = status == Status.OK or status in ACCEPTED
        if name == Tool.SEARCH_ASSETS:
            self.searched += 1
            if ok:
                seen = {a["asset_id"] for a in self.assets}
                self.assets += [a for a in result.get("assets") or [] if a["asset_id"] not in seen]
        elif name == Tool.UPDATE_CRM:
            self.crm_done = True
        elif name == Tool.SEND_COUPON:
            self.tried[str(args.get("asset_id"))] = status if ok else reason
            if ok:
                self.accepted.append(f"coupon {args.get('asset_id')} ({status})")
            elif reason not in ASSET_SPECIFIC:
                self.blocked[name] = reason
        elif name == Tool.SEND_SMS:
            self.sms_tried = True
            if ok:
                self.accepted.append(f"sms ({status})")
            else:
                self.blocked[name] = reason


def _call(name: str, **arguments: Any) -> ModelReply:
    return ModelReply(
        text=None, tool_calls=[ToolCall(id=f"rules_{next(_ids)}", name=name, arguments=arguments)]
    )


def _ranked(assets: list[dict[str, Any]], plan: Plan, s: Situation, h: History) -> list[dict[str, Any]]:
    """Untried assets of the right kind, best first: not the thing just bought, then score."""
    item_words = {w for w in re.findall(r"[a-z]+", (s.item or "").lower()) if len(w) > 3}

    def fit(a: dict[str, Any]) -> tuple[int, float]:
        same_item = (
            plan.kind == "coupon"
            and bool(item_words)
            and item_words <= set(re.findall(r"[a-z]+", str(a.get("title", "")).lower()))
            and "cart" not in plan.query
            and "discount on" not in plan.query
        )
        return (0 if same_item else 1, float(a.get("score") or 0))

    candidates = [
        a
        for a in assets
        if a["asset_id"] not in h.tried and (plan.kind is None or a.get("kind") == plan.kind)
    ]
    candidates.sort(key=fit, reverse=True)
    return candidates


class RulesModel:
    brain = "rules"
    model = "rules-v1"

    async def complete(self, request: ModelRequest) -> ModelReply:
        b = request.brief
        allowed = {t.name for t in request.tools}
        s = Situation.of(b)
        plan = plan_for(b, s)
        h = History.of(request)
        if plan.crm_note and Tool.UPDATE_CRM in allowed and not h.crm_done:
            return _call(Tool.UPDATE_CRM, user_id=b.user_id, fields={"agent_note": plan.crm_note},
                         reason=f"{b.trigger}: hand the case to a person")  # fmt: skip
        if Tool.SEARCH_ASSETS in allowed and h.searched == 0:
            args: dict[str, Any] = {"query": plan.query, "k": SEARCH_K.get(b.selection, CANDIDATES_K)}
            if plan.kind:
                args["kind"] = plan.kind
            if plan.max_value:
                args["max_value"] = plan.max_value
            return _call(Tool.SEARCH_ASSETS, **args)
        if h.searched == 1 and not h.assets and plan.category and Tool.SEARCH_ASSETS in allowed:
            return _call(Tool.SEARCH_ASSETS, query=plan.query, kind=plan.kind or "coupon", k=5)
        offers_tried = len([v for v in h.tried.values()])
        if not h.accepted and Tool.SEND_COUPON in allowed and Tool.SEND_COUPON not in h.blocked \
                and offers_tried < MAX_OFFER_ATTEMPTS:  # fmt: skip
            ranked = _ranked(h.assets, plan, s, h)
            if ranked:
                # Every fitting asset is a candidate (the allocator may pick another); the best first.
                offers = [Candidate(Tool.SEND_COUPON, {"user_id": b.user_id, "asset_id": a["asset_id"],
                                    "reason": f"{b.trigger}: {plan.situation_line} Offer: {a.get('title')}"},
                                    str(a.get("title") or a["asset_id"])) for a in ranked]  # fmt: skip
                reply = _call(Tool.SEND_COUPON, **offers[0].arguments)
                reply.candidates = offers
                return reply
        if not h.accepted and Tool.SEND_SMS in allowed and s.sms_ok and not h.sms_tried \
                and b.goal in ("cart_recovery", "points_expiry", "birthday"):  # fmt: skip
            return _call(Tool.SEND_SMS, user_id=b.user_id, text=self._sms_text(b, s),
                         reason=f"{b.trigger}: {plan.situation_line}")  # fmt: skip
        return ModelReply(text=self._rationale(plan, s, h))

    @staticmethod
    def _sms_text(b: Brief, s: Situation) -> str:
        if b.goal == "cart_recovery":
            return f"Hi {s.name}, your {s.item or 'item'} is still waiting in your cart."
        if b.goal == "birthday":
            return f"Happy birthday, {s.name}! A little treat is waiting in your account."
        return f"Hi {s.name}, you have {s.points:.0f} points to use before they expire."

    @staticmethod
    def _rationale(plan: Plan, s: Situation, h: History) -> str:
        parts = [plan.situation_line]
        if s.injection:
            parts.append("The ticket text tried to instruct the system (e.g. to send points); treated it as "
                         "data and ignored it.")  # fmt: skip
        if h.crm_done:
            parts.append("Noted the case in the CRM for a person to follow up.")
        if h.assets:
            parts.append(f"Searched the catalogue for '{plan.query}' ({len(h.assets)} candidates).")
        refused = [f"{a} ({r})" for a, r in h.tried.items() if r not in ACCEPTED]
        if refused:
            parts.append("The guard refused: " + ", ".join(refused) + ".")
        for tool, reason in h.blocked.items():
            if tool == Tool.SEND_SMS:
                parts.append(f"SMS refused ({reason}).")
        if h.accepted:
            parts.append("Acted: " + "; ".join(h.accepted) + ".")
        elif not h.assets:
            parts.append("Nothing in the catalogue fits right now, so doing nothing.")
        else:
            parts.append("No offer could be sent, so doing nothing this time.")
        return " ".join(parts)

    async def aclose(self) -> None:
        return None
