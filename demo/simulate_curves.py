"""Learning curves of `mca simulate --policy ...`: one run of the real product per policy (same
customers, same seed), then cumulative conversion and cumulative regret against the oracle that
knows the hidden probabilities, per treatment decision, as a table and a PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from demo.simulate import SimulationRun

CHECKPOINTS = (0.1, 0.25, 0.5, 0.75, 1.0)


def curve_table(runs: Sequence[SimulationRun]) -> str:
    """Per policy and checkpoint: decisions, cumulative conversion rate and cumulative regret."""
    lines = ["policy | decisions | conversion so far | regret so far (expected conversions lost)"]
    for run in runs:
        n = len(run.regret)
        if n == 0:
            lines.append(f"{run.config.policy} | 0 | - | -")
            continue
        converted, regret = np.cumsum(run.converted), np.cumsum(run.regret)
        for share in CHECKPOINTS:
            i = max(int(n * share) - 1, 0)
            lines.append(f"{run.config.policy} | {i + 1} | {converted[i] / (i + 1):.2%} | {regret[i]:.1f}")
    by = {r.config.policy: float(np.sum(r.regret)) for r in runs if r.regret}
    if "bandit" in by and "uniform" in by and by["uniform"] > 0:
        lines.append(f"bandit regret as a share of uniform's: {by['bandit'] / by['uniform']:.0%}")
    if "bandit" in by and "model" in by and by["model"] > 0:
        lines.append(f"bandit regret as a share of model's: {by['bandit'] / by['model']:.0%}")
    return "\n".join(lines)


def curve_chart(runs: Sequence[SimulationRun], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (conv, reg) = plt.subplots(1, 2, figsize=(11, 4))
    for run in runs:
        if not run.regret:
            continue
        x = np.arange(1, len(run.regret) + 1)
        conv.plot(x, np.cumsum(run.converted) / x, label=run.config.policy)
        reg.plot(x, np.cumsum(run.regret), label=run.config.policy)
    conv.set_title("cumulative conversion (treatment decisions)")
    conv.set_xlabel("decisions")
    reg.set_title("cumulative regret against the oracle")
    reg.set_xlabel("decisions")
    reg.set_ylabel("expected conversions lost")
    for ax in (conv, reg):
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
