"""`mca simulate`: synthetic customers drive the real product on a simulated clock.

Nothing is modelled but the customers. Their events go through `POST /ingest`; the trigger
service, the agent (rules brain), the guard, the dispatcher and the announcer do their real
work, stepped one round per simulated day so the run is deterministic for a seed; the
customers answer with outcome events through `/ingest` again, converting with the hidden
probabilities of `demo.population`. At the end the uplift report reads the attribution views,
and the simulator prints the true lift it knows beside it.

The simulation runs in its own database on the embedded server (`mca_simulation`, recreated
each run), so it never mixes synthetic customers into the programme's own data.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from demo.population import Customer, Truth
from mca.errors import ConfigError
from mca.settings import Settings

Echo = Callable[[str], None]
DATABASE = "mca_simulation"
TRIGGER = "churn_risk"
WINDOW = timedelta(days=7)
REDEEM_SHARE = 0.7  # of converting customers who were sent a coupon, how many use its code
DAY_TIME = timedelta(hours=12)  # when each simulated day's churn scores arrive (noon UTC)
# `--policy` names the trigger's selection mode: uniform is `explore` (uniform among allowed).
POLICIES = {"uniform": "explore", "model": "model", "bandit": "bandit"}


class SimulatedClock:
    """The product's clock during a simulation: it stands still until the simulator moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@dataclass(frozen=True)
class SimulationConfig:
    customers: int = 2_000
    days: int = 28
    seed: int = 1
    control: float = 0.3  # a larger control group than production's default, for a tighter interval
    holdout: float = 0.05
    policy: str = "model"  # how the offer is chosen (POLICIES)

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(f"--policy: one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.customers < 10:
            raise ConfigError(f"--customers: at least 10, got {self.customers}")
        if self.days < WINDOW.days + 1:
            raise ConfigError(
                f"--days: at least {WINDOW.days + 1} (the last {WINDOW.days} only let windows close), "
                f"got {self.days}"
            )


@dataclass
class Outcome:
    at: datetime
    user_id: str
    value: float
    coupon_code: str | None


@dataclass
class SimulationRun:
    config: SimulationConfig
    started: datetime
    truth: Truth = field(default_factory=Truth)
    decisions: int = 0
    sent: int = 0
    pending: list[Outcome] = field(default_factory=list)
    # Per treatment decision, in order: converted (0/1) and the regret against the oracle that
    # knows the hidden probabilities (the best arm's rate minus the rate of what was sent).
    converted: list[int] = field(default_factory=list)
    regret: list[float] = field(default_factory=list)
    # Per trigger day: the arm evidence the allocator decided with (exposures as weighed, conversions).
    evidence: list[tuple[int, float, int]] = field(default_factory=list)
    customers: dict[str, Customer] = field(default_factory=dict)  # by user_id, hidden rates and all


def simulation_files(directory: Path, config: SimulationConfig, policy_file: Path) -> tuple[Path, Path]:
    """A triggers file with the one trigger the simulation measures, and the policy with its
    budgets lifted (the simulation measures the offers, not the budget)."""
    triggers = {
        "version": 1,
        "experiments": {"salt": f"sim-{config.seed}", "holdout": config.holdout, "control": config.control},
        "attribution": {"window": f"{WINDOW.days}d"},
        "defaults": {"cooldown": "365d", "user_cooldown": "0s", "max_event_age": "1h"},
        "rules": [
            {
                "name": TRIGGER,
                "event": "churn_scored",
                "when": ["event.properties.score >= 0.8"],
                "goal": "retention",
                "tools": ["search_assets", "get_user_context", "send_coupon"],
                "selection": POLICIES[config.policy],
            }
        ],
    }
    policy = yaml.safe_load(policy_file.read_text())
    policy["budgets"] = {**policy.get("budgets", {}), "global": {"day": 1_000_000, "month": 10_000_000},
                         "per_user": {"month": 1_000},
                         # an arm never runs out: the oracle's best arm stays available all run
                         "per_asset_redemptions": 10_000_000}  # fmt: skip
    policy.pop("triggers", None)
    triggers_path, policy_path = directory / "triggers.yaml", directory / "policy.yaml"
    triggers_path.write_text(yaml.safe_dump(triggers))
    policy_path.write_text(yaml.safe_dump(policy))
    return triggers_path, policy_path


def identify_call(customer: Customer, at: datetime) -> dict[str, Any]:
    name = customer.user_id.rsplit("-", 1)[-1]
    return {
        "type": "identify",
        "userId": customer.user_id,
        "messageId": f"{customer.user_id}-identify",
        "timestamp": at.isoformat(),
        "traits": {"first_name": f"Sim{name}", "email": f"{customer.user_id}@example.com", "timezone": "UTC",
                   "tier": "silver", "consent_email": True, "consent_sms": False},
    }  # fmt: skip


def churn_call(customer: Customer, at: datetime, day: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "churn_scored",
        "userId": customer.user_id,
        "messageId": f"{customer.user_id}-churn-{day}",
        "timestamp": at.isoformat(),
        "properties": {"score": 0.85},
    }


def outcome_calls(outcome: Outcome, n: int) -> list[dict[str, Any]]:
    props: dict[str, Any] = {"order_id": f"o-{outcome.user_id}-{n}", "revenue": round(outcome.value, 2)}
    calls = []
    if outcome.coupon_code:
        props["coupon"] = outcome.coupon_code
        calls.append({"type": "track", "event": "Coupon Applied", "userId": outcome.user_id,
                      "messageId": f"{outcome.user_id}-coupon-{n}", "timestamp": outcome.at.isoformat(),
                      "properties": {"coupon": outcome.coupon_code}})  # fmt: skip
    calls.append({"type": "track", "event": "Order Completed", "userId": outcome.user_id,
                  "messageId": f"{outcome.user_id}-order-{n}", "timestamp": outcome.at.isoformat(),
                  "properties": props})  # fmt: skip
    return calls


def draw_outcome(
    customer: Customer, sent: tuple[str, str | None] | None, decided_at: datetime, rng: np.random.Generator
) -> Outcome | None:
    """Whether and when the customer converts within the window, given what mca sent them."""
    asset, code = sent if sent is not None else (None, None)
    if rng.random() >= customer.rate(asset):
        return None
    at = decided_at + timedelta(seconds=float(rng.uniform(3600, WINDOW.total_seconds() - 3600)))
    value = customer.segment.order_value * float(rng.uniform(0.8, 1.2))
    redeem = code is not None and rng.random() < REDEEM_SHARE
    return Outcome(at, customer.user_id, value, code if redeem else None)


def simulation_settings(settings: Settings, directory: Path, config: SimulationConfig) -> Settings:
    if not settings.uses_embedded:
        raise ConfigError(
            "mca simulate runs on the embedded server only (it creates its own database of synthetic "
            "customers); unset MCA_STATE_URL and MCA_OPS_URL"
        )
    triggers, policy = simulation_files(directory, config, Path(settings.guard.policy_file))
    return settings.model_copy(update={"triggers_file": triggers, "policy_file": policy})


@dataclass(frozen=True)
class SimulationResult:
    run: SimulationRun
    uplift: Any  # measure.uplift.UpliftRow of the simulated trigger, or None with no closed exposures
    chart: Path | None
    ope: Any = None  # demo.simulate_ope.GreedyCheck on this run's logs; None for a `model` run

    @property
    def covered(self) -> bool | None:
        """Whether the report's 95% interval for the conversion lift contains the true lift."""
        lift = getattr(self.uplift, "conversion_lift", None)
        return None if lift is None else lift.low <= self.run.truth.itt_lift <= lift.high


EXPOSURES_BY_DAY = """
SELECT date_trunc('day', first_exposed_at) AS day, experiment_group,
       count(*) AS customers, count(*) FILTER (WHERE converted) AS converted
FROM experiment_exposures WHERE trigger_name = %(trigger)s AND NOT pending
GROUP BY 1, 2 ORDER BY 1, 2
"""


def write_chart(conn: Any, path: Path) -> Path:
    """Cumulative conversion rate of each group by exposure day, as a PNG (matplotlib, headless)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = conn.execute(EXPOSURES_BY_DAY, {"trigger": TRIGGER}).fetchall()
    fig, ax = plt.subplots(figsize=(7, 4))
    for group in ("treatment", "control", "holdout"):
        mine = [r for r in rows if r["experiment_group"] == group]
        if not mine:
            continue
        n = np.cumsum([r["customers"] for r in mine])
        k = np.cumsum([r["converted"] for r in mine])
        ax.plot([r["day"] for r in mine], k / n, marker="o", label=f"{group} (n={int(n[-1])})")
    ax.set_title(f"{TRIGGER}: cumulative conversion within the window, by group")
    ax.set_ylabel("conversion rate")
    ax.legend()
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run_simulation(
    settings: Settings,
    config: SimulationConfig,
    echo: Echo,
    *,
    progress: bool = True,
    chart: Path | None = None,
) -> SimulationResult:
    """Prepare the simulation's database, drive the product through it, read the uplift report."""
    from demo.simulate_ope import greedy_check
    from demo.simulation_driver import drive, prepare
    from mca.db import connect
    from measure.assign import Shares
    from measure.read import EXPOSURES_SQL, exposure_params
    from measure.uplift import report

    with tempfile.TemporaryDirectory(prefix="mca-sim-") as tmp:
        sim_settings = simulation_settings(settings, Path(tmp), config)
        stores = prepare(sim_settings, DATABASE, echo)
        started = (datetime.now(UTC) - timedelta(days=config.days + 1)).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
        run = asyncio.run(
            drive(sim_settings, stores, SimulationRun(config, started), echo, progress=progress)
        )
    with connect(stores.state_url, autocommit=True) as conn:
        rows = conn.execute(
            EXPOSURES_SQL, exposure_params(TRIGGER, timedelta(days=config.days + 2))
        ).fetchall()
        found = report(rows, shares=Shares(holdout=config.holdout, control=config.control))
        written = write_chart(conn, chart) if chart is not None else None
        ope = greedy_check(conn, TRIGGER, run.customers, config.seed)
    return SimulationResult(run, found[0] if found else None, written, ope)


__all__ = [
    "SimulatedClock",
    "SimulationConfig",
    "SimulationResult",
    "SimulationRun",
    "draw_outcome",
    "run_simulation",
]
