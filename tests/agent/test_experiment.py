"""Holdout and control assignment: deterministic, sticky, the configured sizes, independent across
salts; and the triggers file refuses an invalid share naming the field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from scipy import stats

from agent.errors import TriggerConfigError
from agent.experiment import Experiment, Group
from agent.trigger_config import parse_triggers
from mca.settings import PROJECT_ROOT
from measure.assign import experiment_id

USERS = [f"user-{i}" for i in range(20_000)]


def test_assignment_is_sticky_and_has_the_configured_sizes() -> None:
    experiment = Experiment(salt="s1", holdout=0.05, control=0.10)
    groups = [experiment.assign(u, "churn_risk").group for u in USERS]
    assert groups == [experiment.assign(u, "churn_risk").group for u in USERS]
    holdout = groups.count(Group.HOLDOUT)
    control = groups.count(Group.CONTROL)
    # Two-sided binomial tests at the configured shares (control is 10% of the non-holdout).
    assert stats.binomtest(holdout, len(USERS), 0.05).pvalue > 0.001
    assert stats.binomtest(control, len(USERS) - holdout, 0.10).pvalue > 0.001


def test_the_holdout_is_the_same_customers_for_every_trigger() -> None:
    experiment = Experiment(salt="s1")
    a = {u for u in USERS if experiment.assign(u, "churn_risk").group is Group.HOLDOUT}
    b = {u for u in USERS if experiment.assign(u, "big_purchase").group is Group.HOLDOUT}
    assert a == b and a


def test_a_new_salt_is_a_new_experiment() -> None:
    old, new = Experiment(salt="s1"), Experiment(salt="s2")
    held_old = {u for u in USERS if old.assign(u, "t").group is Group.HOLDOUT}
    held_new = {u for u in USERS if new.assign(u, "t").group is Group.HOLDOUT}
    overlap = len(held_old & held_new)
    # Independent draws: about 5% of the old holdout is in the new one.
    assert stats.binomtest(overlap, len(held_old), 0.05).pvalue > 0.001
    assert old.assign(USERS[0], "t").experiment_id == experiment_id("s1")


def test_a_triggers_control_share_overrides_the_default() -> None:
    experiment = Experiment(salt="s1", holdout=0.0, control=0.10)
    groups = [experiment.assign(u, "t", control=0.4).group for u in USERS[:4000]]
    assert stats.binomtest(groups.count(Group.CONTROL), 4000, 0.4).pvalue > 0.001


def _parse(text: str) -> object:
    return parse_triggers(text, queries_dir=PROJECT_ROOT / "sql" / "triggers", source="t.yaml")


def test_the_triggers_file_sets_the_experiment_and_refuses_bad_shares(tmp_path: Path) -> None:
    rules = "rules:\n  - {name: r, event: purchase, goal: post_purchase, control: 0.25}\n"
    parsed = _parse("experiments: {salt: spring, holdout: 0.02, control: 0.2}\n" + rules)
    assert parsed.experiment == Experiment("spring", 0.02, 0.2)  # type: ignore[attr-defined]
    assert parsed.rules[0].control_share == 0.25  # type: ignore[attr-defined]
    too_big = r"experiments\.holdout: Input should be less than or equal to 0\.5"
    with pytest.raises(TriggerConfigError, match=too_big):
        _parse("experiments: {holdout: 1.5}\n")
    with pytest.raises(
        TriggerConfigError, match=r"rules\[r\].control: Input should be greater than or equal to 0"
    ):
        _parse("rules:\n  - {name: r, event: purchase, goal: post_purchase, control: -0.1}\n")


def test_attribution_windows_are_per_goal_and_bad_ones_are_refused() -> None:
    rules = (
        "rules:\n  - {name: a, event: purchase, goal: post_purchase}\n"
        "  - {name: b, event: session_start, goal: win_back}\n"
    )
    parsed: Any = _parse("attribution: {window: 5d, goals: {win_back: 2d}}\n" + rules)
    windows = {r.name: r.attribution_window for r in parsed.rules}
    assert windows == {"a": timedelta(days=5), "b": timedelta(days=2)}
    with pytest.raises(TriggerConfigError, match=r"attribution\.window: .*between 1m and 90d, got '365d'"):
        _parse("attribution: {window: 365d}\n")
    with pytest.raises(TriggerConfigError, match=r"attribution\.goals\.nope: no such goal"):
        _parse("attribution: {goals: {nope: 1d}}\n")


def test_the_test_triggers_file_turns_experiments_off(triggers_file: Path) -> None:
    shipped: Any = _parse((PROJECT_ROOT / "config" / "triggers.yaml").read_text())
    off: Any = _parse(triggers_file.read_text())
    # Why tests about decisions use the copy: with the shipped shares u_ana is held out.
    assert shipped.experiment.assign("u_ana", "cart_abandoned").group is Group.HOLDOUT
    assert off.experiment == Experiment(shipped.experiment.salt, 0.0, 0.0)
    assert [r.name for r in off.rules] == [r.name for r in shipped.rules]
    assert all(off.experiment.assign(u, r.name, r.control_share).group is Group.TREATMENT
               for u in USERS[:500] for r in off.rules)  # fmt: skip
