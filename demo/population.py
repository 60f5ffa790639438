"""The simulator's customers: segments with hidden response probabilities the product never sees.

Each customer belongs to a segment with a base probability of converting within the attribution
window after a moment worth acting on (a churn score crossing the trigger's threshold), and a
lift per offer: how much more likely they convert if mca actually sends that asset. The
simulator drives the real product with these customers and, because it knows the hidden
probabilities, can say what the true lift was, which the uplift report must recover.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Segment:
    name: str
    share: float  # of the population
    base_rate: float  # converts within the window without any action
    trigger_rate: float  # chance per simulated day that a churn score fires the trigger
    default_lift: float  # extra conversion probability of any offer not listed in lifts
    lifts: Mapping[str, float] = field(default_factory=dict)  # asset_id -> extra probability
    order_value: float = 60.0


# Calibrated so a few thousand customers over a few weeks give a lift the report can see.
SEGMENTS = (
    Segment("bargain_hunter", 0.35, 0.06, 0.06, 0.10, order_value=45.0),
    Segment("loyalist", 0.25, 0.15, 0.04, 0.03, order_value=90.0),
    Segment("lapsing", 0.40, 0.03, 0.08, 0.06, order_value=60.0),
)


@dataclass(frozen=True)
class Customer:
    user_id: str
    segment: Segment

    def rate(self, sent_asset: str | None) -> float:
        """Probability of converting within the window, given what mca sent (None: nothing)."""
        if sent_asset is None:
            return self.segment.base_rate
        lift = self.segment.lifts.get(sent_asset, self.segment.default_lift)
        return min(1.0, self.segment.base_rate + lift)

    def lift(self, asset: str | None) -> float:
        return self.rate(asset) - self.rate(None)


def population(customers: int, seed: int, segments: tuple[Segment, ...] = SEGMENTS) -> list[Customer]:
    """``customers`` customers, segments drawn by share; same seed, same people."""
    if customers < 1:
        raise ValueError(f"customers must be >= 1, got {customers}")
    rng = np.random.default_rng(seed)
    shares = np.array([s.share for s in segments])
    picks = rng.choice(len(segments), size=customers, p=shares / shares.sum())
    tag = hashlib.sha256(f"sim-{seed}".encode()).hexdigest()[:6]
    return [Customer(f"sim{tag}-{i:05d}", segments[int(k)]) for i, k in enumerate(picks)]


@dataclass
class Truth:
    """What the simulator knows and the product does not: the ITT effect of being treated."""

    lifts: list[float] = field(default_factory=list)  # per triggered customer: lift of what mca chose

    def add(self, customer: Customer, chosen_asset: str | None) -> None:
        # For treatment customers what was sent; for control, what was decided and withheld:
        # either way the effect being treated would have had on them.
        self.lifts.append(customer.lift(chosen_asset))

    @property
    def itt_lift(self) -> float:
        return float(np.mean(self.lifts)) if self.lifts else 0.0
