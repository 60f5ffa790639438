"""Uplift: intent-to-treat lift of treatment over control (and holdout) with 95% intervals.

Each row of ``experiment_exposures`` is one customer triggered in one experiment, sent or
not; closed windows only (pending rows are not failures, they are not yet outcomes). The
statistics are statsmodels' and scipy's: Newcombe's score interval for the difference of two
proportions, Welch's t interval for revenue per customer, a chi-square sample-ratio check.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import chisquare
from statsmodels.stats.proportion import confint_proportions_2indep
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from measure.assign import Group, Shares, expected_shares

SRM_ALPHA = 0.001


@dataclass(frozen=True)
class Lift:
    absolute: float
    low: float
    high: float
    relative: float | None  # absolute / baseline; None when the baseline is zero


@dataclass(frozen=True)
class UpliftRow:
    trigger: str
    key: str  # the brain or segment value when grouped by one, else ""
    customers: dict[str, int]
    conversion_rate: dict[str, float]
    revenue_per_customer: dict[str, float]
    conversion_lift: Lift | None
    revenue_lift: Lift | None
    incremental_revenue: float | None
    cost: float
    net: float | None
    srm_p: float | None
    srm_warning: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def conversion_lift(conv_t: int, n_t: int, conv_c: int, n_c: int) -> Lift:
    """Treatment minus control conversion rate, with the 95% score interval."""
    low, high = confint_proportions_2indep(conv_t, n_t, conv_c, n_c, method="newcomb", compare="diff")
    p_t, p_c = conv_t / n_t, conv_c / n_c
    return Lift(p_t - p_c, float(low), float(high), (p_t - p_c) / p_c if p_c else None)


def mean_lift(treated: np.ndarray, control: np.ndarray) -> Lift:
    """Difference of mean revenue per customer, Welch's 95% interval (unequal variances)."""
    diff = float(treated.mean() - control.mean())
    if treated.var() == 0 and control.var() == 0:
        low = high = diff
    else:
        low, high = CompareMeans(DescrStatsW(treated), DescrStatsW(control)).tconfint_diff(usevar="unequal")
    base = float(control.mean())
    return Lift(diff, float(low), float(high), diff / base if base else None)


def sample_ratio(counts: dict[str, int], holdout: float, control: float) -> tuple[float | None, str | None]:
    """The chi-square p-value of the group sizes against the configured shares, and a warning."""
    shares = expected_shares(holdout, control)
    groups = [g for g in Group if shares[g] > 0]
    total = sum(counts.get(g.value, 0) for g in groups)
    if total == 0 or len(groups) < 2:
        return None, None
    observed = [counts.get(g.value, 0) for g in groups]
    norm = sum(shares[g] for g in groups)
    expected = [total * shares[g] / norm for g in groups]
    p = float(chisquare(observed, expected).pvalue)
    if p < SRM_ALPHA:
        sizes = ", ".join(
            f"{g.value} {o} (expected {e:.0f})" for g, o, e in zip(groups, observed, expected, strict=True)
        )
        return (
            p,
            f"sample ratio mismatch (p={p:.2g}): {sizes}; check assignment and logging before trusting lift",
        )
    return p, None


def uplift_row(
    trigger: str, key: str, rows: list[dict[str, Any]], *, holdout: float, control: float
) -> UpliftRow:
    """One report row from the exposures of one trigger (and brain/segment)."""
    by: dict[str, list[dict[str, Any]]] = {g.value: [] for g in Group}
    for r in rows:
        by.setdefault(r["experiment_group"], []).append(r)
    counts = {g: len(v) for g, v in by.items()}
    conv = {g: sum(1 for r in v if r["converted"]) for g, v in by.items()}
    revenue = {g: np.array([float(r["revenue"]) for r in v]) for g, v in by.items()}
    rate = {g: conv[g] / counts[g] for g in by if counts[g]}
    rpc = {g: float(revenue[g].mean()) for g in by if counts[g]}
    cost = sum(float(r["cost"]) for r in by[Group.TREATMENT.value])
    t, c = Group.TREATMENT.value, Group.CONTROL.value
    comparable = counts[t] > 0 and counts[c] > 0
    c_lift = conversion_lift(conv[t], counts[t], conv[c], counts[c]) if comparable else None
    r_lift = mean_lift(revenue[t], revenue[c]) if comparable else None
    incremental = r_lift.absolute * counts[t] if r_lift else None
    srm_p, warning = sample_ratio(counts, holdout, control)
    return UpliftRow(
        trigger,
        key,
        counts,
        rate,
        rpc,
        c_lift,
        r_lift,
        incremental,
        cost,
        None if incremental is None else incremental - cost,
        srm_p,
        warning,
    )


def report(rows: list[dict[str, Any]], *, by: str | None = None, shares: Shares) -> list[UpliftRow]:
    """Rows per trigger (and per `by`: "brain" or "segment") from closed exposures; each
    trigger's group sizes are checked against its configured `shares`."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("pending"):
            continue
        key = str(r.get(by) or "") if by else ""
        groups.setdefault((r["trigger_name"], key), []).append(r)
    return [
        uplift_row(t, k, v, holdout=shares.of(t)[0], control=shares.of(t)[1])
        for (t, k), v in sorted(groups.items())
    ]
