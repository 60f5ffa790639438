"""Off-policy evaluation on the simulator's own logs, beside the value the simulator knows.

After a run under `explore` or `bandit`, the logged decisions (arm, propensity, allowed
candidates, converted) are read back from the attribution views the way `mca learn evaluate`
reads them, and the doubly robust estimate of the greedy policy (the best posterior mean on those
logs) is compared with greedy's true value: each logged customer's hidden conversion probability
had they been sent greedy's arm.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from demo.population import Customer

LOGGED_SQL = """
SELECT a.user_id, coalesce(a.asset, a.action_type) || ':' || coalesce(a.channel, '') AS arm,
       a.propensity, e.properties -> 'candidates' AS candidates, a.converted
FROM action_attribution a JOIN events e ON e.event_id = a.action_id
WHERE a.sent AND NOT a.pending AND a.trigger_name = %(trigger)s
ORDER BY a.acted_at, a.action_id
"""


@dataclass(frozen=True)
class GreedyCheck:
    """The doubly robust estimate of greedy's conversion per decision and its true value."""

    estimate: float
    low: float
    high: float
    truth: float
    decisions: int
    effective_sample_size: float

    @property
    def relative_error(self) -> float:
        return abs(self.estimate - self.truth) / self.truth if self.truth else float("nan")

    @property
    def covered(self) -> bool:
        return self.low <= self.truth <= self.high


def greedy_check(conn: Any, trigger: str, customers: dict[str, Customer], seed: int) -> GreedyCheck | None:
    """None when the run logged no allocated decisions (a `model` run)."""
    from learn.cli import logged_decisions
    from learn.ope import Estimator, evaluate
    from learn.policies import PolicyName, TargetPolicy, evaluation_arrays
    from learn.posterior import ArmStats, RewardModel, posterior

    rows = [dict(r) for r in conn.execute(LOGGED_SQL, {"trigger": trigger}).fetchall()]
    kept = [r for r in rows if logged_decisions([r])]
    logs = logged_decisions(kept)
    if not logs:
        return None
    by_arm: dict[str, list[float]] = {}
    for log in logs:
        by_arm.setdefault(log.chosen, []).append(log.reward)
    posts = {
        arm: posterior(ArmStats(arm, len(rs), int(sum(rs))), RewardModel.CONVERSION)
        for arm, rs in by_arm.items()
    }
    rng = np.random.default_rng(seed)
    greedy = TargetPolicy(PolicyName.GREEDY)
    columns = evaluation_arrays(logs, greedy, posts, rng)
    est = evaluate(Estimator.DOUBLY_ROBUST, **columns, rng=rng)  # type: ignore[arg-type]
    truths = []
    for r, log in zip(kept, logs, strict=True):
        probs = greedy.probabilities(log.candidates, posts, rng)
        arm = log.candidates[int(np.argmax(probs))]
        truths.append(customers[str(r["user_id"])].rate(arm.split(":", 1)[0]))
    return GreedyCheck(
        est.value, est.low, est.high, float(np.mean(truths)), est.decisions, est.effective_sample_size
    )
