"""Assignment is deterministic, sticky, close to the configured shares, and renewed by the salt."""

from __future__ import annotations

import pytest
from scipy.stats import chisquare

from measure.assign import Group, assign, expected_shares, experiment_id

USERS = [f"user-{n}" for n in range(20_000)]


def test_same_inputs_same_group() -> None:
    first = [assign(u, "churn_risk", salt="s1") for u in USERS[:500]]
    assert first == [assign(u, "churn_risk", salt="s1") for u in USERS[:500]]


def test_shares_match_configuration() -> None:
    groups = [assign(u, "churn_risk", salt="s1", holdout=0.05, control=0.10).group for u in USERS]
    shares = expected_shares(0.05, 0.10)
    observed = [groups.count(g) for g in Group]
    expected = [shares[g] * len(USERS) for g in Group]
    assert chisquare(observed, expected).pvalue > 0.001


def test_holdout_is_global_control_is_per_trigger() -> None:
    a = {u: assign(u, "churn_risk", salt="s1").group for u in USERS}
    b = {u: assign(u, "birthday", salt="s1").group for u in USERS}
    assert all((a[u] is Group.HOLDOUT) == (b[u] is Group.HOLDOUT) for u in USERS)
    both = sum(1 for u in USERS if a[u] is Group.CONTROL and b[u] is Group.CONTROL)
    assert both < 0.03 * len(USERS)  # independent: about 0.95 * 0.01, not 0.095


def test_new_salt_is_a_new_experiment() -> None:
    old = [assign(u, "t", salt="s1") for u in USERS[:2000]]
    new = [assign(u, "t", salt="s2") for u in USERS[:2000]]
    assert {a.experiment_id for a in old} == {experiment_id("s1")} != {experiment_id("s2")}
    moved = sum(1 for o, n in zip(old, new, strict=True) if o.group != n.group)
    assert moved > 100


@pytest.mark.parametrize(("holdout", "control", "field"), [(0.6, 0.1, "holdout"), (0.05, -0.1, "control")])
def test_bad_share_names_the_field(holdout: float, control: float, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        assign("u", "t", salt="s", holdout=holdout, control=control)
