"""A synthetic loyalty programme: customers and their event histories, deterministic per seed.

Each user draws from their own ``random.Random(f"{seed}:{index}")`` so the world streams one
user at a time (a million events never sit in memory at once) and is the same on every run
with the same seed, user count, event count and ``now``.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

from demo.seed.people import (
    EMAIL_DOMAINS,
    FIRST_NAMES,
    LAST_INITIALS,
    PLACES,
    SOURCES_SESSION,
    TICKET_CHANNELS,
    TICKET_RESOLUTIONS,
    TICKET_TEXTS,
    TIER_POINTS_MULTIPLIER,
    TIERS,
)
from demo.seed.products import CATEGORIES, PRODUCTS, Product, products_in
from mca.errors import InputError

HISTORY_DAYS = 90
POINTS_PER_DOLLAR = 10
REDEEM_COSTS = [500, 1000, 2500, 5000]
COLUMNS = (
    "event_id", "user_id", "event_type", "ts", "source", "value", "points", "sku", "category",
    "text", "properties",
)  # fmt: skip


class EventRow(NamedTuple):
    event_id: str
    user_id: str
    event_type: str
    ts: datetime
    source: str
    value: float | None
    points: int | None
    sku: str | None
    category: str | None
    text: str | None
    properties: str  # JSON text: COPY and INSERT both take it for jsonb


def user_id_of(index: int) -> str:
    return f"user-{index + 1:06d}"


def _pick(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([w[0] for w in weighted], weights=[w[1] for w in weighted])[0]


def event_budgets(users: int, events: int, seed: int) -> list[int]:
    """How many events each user gets: heavy-tailed, summing exactly to ``events``.

    Every user has at least an identify and a churn score, so events >= 2 * users.
    """
    if users < 1:
        raise InputError("--users: must be at least 1")
    if events < 2 * users:
        raise InputError(f"--events: must be at least twice --users ({2 * users}), got {events}")
    rng = random.Random(f"{seed}:budgets")
    # Heavy-tailed like real programmes, but capped: no single member owns the dataset.
    weights = [min(rng.paretovariate(1.6), 60.0) for _ in range(users)]
    spare = events - 2 * users
    total = sum(weights)
    budgets = [2 + math.floor(spare * w / total) for w in weights]
    for i in range(events - sum(budgets)):  # rounding leftovers, spread from the start
        budgets[i % users] += 1
    return budgets


class _UserStory:
    """Writes one user's history into a list, stopping exactly at the user's budget."""

    def __init__(self, seed: int, index: int, budget: int, now: datetime) -> None:
        self.rng = random.Random(f"{seed}:{index}")
        self.seed, self.index, self.budget, self.now = seed, index, budget, now
        self.user_id = user_id_of(index)
        self.rows: list[EventRow] = []
        self.points = 0

    def add(
        self, event_type: str, ts: datetime, source: str, *, value: float | None = None,
        points: int | None = None, product: Product | None = None, text: str | None = None,
        properties: dict[str, object] | None = None, category: str | None = None,
    ) -> None:  # fmt: skip
        event_id = f"seed{self.seed}-{self.index + 1:06d}-{len(self.rows):05d}"
        if product is not None:  # as shops send it: the brain names the item without a catalogue lookup
            properties = {**(properties or {}), "product_name": product.name}
        self.rows.append(
            EventRow(
                event_id, self.user_id, event_type, ts, source,
                None if value is None else round(value, 2), points,
                product.sku if product else None,
                product.category if product else category,
                text, json.dumps(properties or {}, separators=(",", ":"), ensure_ascii=False),
            )
        )  # fmt: skip

    @property
    def room(self) -> int:
        return self.budget - len(self.rows)

    def profile(self, *, tier: str | None = None) -> dict[str, object]:
        rng = self.rng
        name = rng.choice(FIRST_NAMES)
        tz, country, digits, _ = rng.choices(PLACES, weights=[p[3] for p in PLACES])[0]
        national = str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(digits - 1))
        local = name.lower().replace(" ", "").replace("á", "a").replace("é", "e").replace("í", "i")
        email = f"{local}.{rng.choice(LAST_INITIALS).lower()}{self.index + 1}@{rng.choice(EMAIL_DOMAINS)}"
        dnc = rng.random() < 0.03
        opted_out = rng.random() < 0.08
        props: dict[str, object] = {
            "first_name": name,
            "phone": f"+{country}{national}",
            "email": email,
            "timezone": tz,
            "tier": tier or _pick(rng, TIERS),
            "consent_sms": (not opted_out) and rng.random() < 0.62,
            "consent_email": (not opted_out) and rng.random() < 0.8,
            "consent_push": (not opted_out) and rng.random() < 0.45,
            "do_not_contact": dnc,
            "birthday": (date(1950, 1, 1) + timedelta(days=rng.randint(0, 20_000))).isoformat(),
        }
        if rng.random() < 0.1:  # some members never gave a phone number
            del props["phone"]
        return props

    def write(self) -> list[EventRow]:
        rng, now = self.rng, self.now
        joined = now - timedelta(days=rng.uniform(1, HISTORY_DAYS))
        # Recent actives make up a little over half; the rest went quiet some time ago.
        if rng.random() < 0.55:
            last = now - timedelta(hours=rng.uniform(2, 24 * 6.5))
        else:
            last = joined + (now - timedelta(days=7) - joined) * rng.random()
        last = max(last, joined + timedelta(minutes=30))
        # Sessions run up to ~45 minutes past their start; nothing may land in the future.
        last = min(last, now - timedelta(hours=1))
        joined = min(joined, last)
        profile = self.profile()
        self.add("identify", joined, "web", properties=profile)
        favourite = rng.choice(CATEGORIES)
        # About four events per session; sessions go in time order so points and tickets add
        # up, and any budget left over is spent on extra sessions at random times.
        planned = max(1, (self.budget - 2) // 4)
        session_times = sorted(joined + (last - joined) * rng.random() for _ in range(planned))
        sessions = 0
        open_tickets: list[tuple[str, datetime]] = []
        while self.room > 1:  # keep one slot for the churn score
            start = session_times[sessions] if sessions < planned else joined + (last - joined) * rng.random()
            sessions += 1
            self._session(start, favourite, open_tickets)
        self._churn_score(last, sessions, joined)
        self.rows.sort(key=lambda r: (r.ts, r.event_id))
        return self.rows

    def _session(self, start: datetime, favourite: str, open_tickets: list[tuple[str, datetime]]) -> None:
        rng = self.rng
        source = _pick(rng, SOURCES_SESSION)
        t = start
        self.add("session_start", t, source, properties={"session_id": f"s{self.index + 1}-{len(self.rows)}"})
        category = favourite if rng.random() < 0.6 else rng.choice(CATEGORIES)
        viewed: Product | None = None
        for _ in range(rng.randint(1, 4)):
            if self.room <= 1:
                return
            t += timedelta(seconds=rng.randint(20, 240))
            viewed = rng.choice(products_in(category))
            self.add("product_viewed", t, source, product=viewed, properties={"price": viewed.price})
        if viewed is not None and self.room > 2 and rng.random() < 0.35:
            t += timedelta(seconds=rng.randint(30, 300))
            self.add("cart_add", t, source, product=viewed, value=viewed.price, properties={"quantity": 1})
            if self.room > 2 and rng.random() < 0.55:
                self._purchase(t + timedelta(minutes=rng.randint(1, 20)), source, viewed)
        if self.room > 2 and rng.random() < 0.05:
            self._ticket(t + timedelta(hours=rng.uniform(1, 48)), viewed, open_tickets)
        if self.room > 2 and open_tickets and rng.random() < 0.3:
            ticket_id, opened = open_tickets.pop(0)
            closed_at = max(t, opened + timedelta(hours=rng.uniform(2, 72)))
            if closed_at < self.now:
                resolution = rng.choice(TICKET_RESOLUTIONS)
                closing: dict[str, object] = {"ticket_id": ticket_id, "resolution": resolution}
                self.add("ticket_closed", closed_at, "support", properties=closing)
        if self.room > 2 and rng.random() < 0.08:
            affordable = [c for c in REDEEM_COSTS if c <= self.points]
            if affordable:
                cost = rng.choice(affordable)
                self.points -= cost
                reward = rng.choice([p for p in PRODUCTS if p.price * 100 <= cost * 2] or PRODUCTS[:1])
                self.add("points_redeemed", t + timedelta(seconds=30), source, points=cost,
                         properties={"reward_id": f"rwd-{reward.sku.lower()}"})  # fmt: skip

    def _purchase(self, t: datetime, source: str, product: Product) -> None:
        rng = self.rng
        quantity = 2 if rng.random() < 0.1 else 1
        value = product.price * quantity * rng.choice([1.0, 1.0, 1.0, 0.9, 0.85])
        order_id = f"o{self.index + 1}-{len(self.rows)}"
        self.add("purchase", t, source, product=product, value=value,
                 properties={"order_id": order_id, "quantity": quantity, "currency": "USD"})  # fmt: skip
        tier = str(json.loads(self.rows[0].properties).get("tier", "bronze"))
        earned = int(value * POINTS_PER_DOLLAR * TIER_POINTS_MULTIPLIER.get(tier, 1.0))
        self.points += earned
        self.add("points_earned", t + timedelta(seconds=5), "loyalty", points=earned,
                 category=product.category, properties={"order_id": order_id, "tier": tier})  # fmt: skip

    def _ticket(self, t: datetime, product: Product | None, open_tickets: list[tuple[str, datetime]]) -> None:
        if t >= self.now:
            return
        rng = self.rng
        template = rng.choice(TICKET_TEXTS)
        text = template.format(product=(product or rng.choice(PRODUCTS)).name)
        ticket_id = f"T{self.seed % 1000:03d}{self.index + 1:06d}{len(self.rows):04d}"
        priority = "high" if "charged" in text or "never" in text else "normal"
        channel = _pick(rng, TICKET_CHANNELS)
        opening: dict[str, object] = {"ticket_id": ticket_id, "channel": channel, "priority": priority}
        self.add("ticket_opened", t, "support", text=text, product=product, properties=opening)
        open_tickets.append((ticket_id, t))

    def _churn_score(self, last: datetime, sessions: int, joined: datetime) -> None:
        # The toy model: recency dominates, frequency protects, with a little noise.
        recency_days = (self.now - last).total_seconds() / 86400
        tenure_days = max(1.0, (self.now - joined).total_seconds() / 86400)
        sessions_30d = sessions * 30 / tenure_days
        logit = -1.0 + 0.09 * recency_days - 0.3 * sessions_30d + self.rng.gauss(0, 0.35)
        score = round(1 / (1 + math.exp(-max(-30.0, min(30.0, logit)))), 3)
        scored_at = self.now - timedelta(hours=self.rng.uniform(0.5, 36))
        self.add("churn_scored", scored_at, "ml", properties={
            "score": score, "model": "churn-toy-v1",
            "features": {"recency_days": round(recency_days, 1), "sessions_30d": round(sessions_30d, 2)},
        })  # fmt: skip


def default_now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def generate_events(users: int, events: int, seed: int, now: datetime | None = None) -> Iterator[EventRow]:
    """Every event of the world, user by user, each user's events in time order."""
    anchor = now or default_now()
    for index, budget in enumerate(event_budgets(users, events, seed)):
        yield from _UserStory(seed, index, budget, anchor).write()


def first_event_id(seed: int) -> str:
    """The id of the world's first event: its presence means this seed was loaded before."""
    return f"seed{seed}-000001-00000"
