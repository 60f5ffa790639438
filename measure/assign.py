"""Experiment assignment: a salted hash of the user id puts each customer in a group.

Deterministic and sticky: the same salt, user and trigger give the same group in every
process, with no table to consult. The global holdout depends on the salt and user only
(a held-out customer is held out of every trigger); the control share is drawn from a second
hash that also includes the trigger, so control groups of different triggers are independent.
Changing the salt starts a new experiment: assignments carry `experiment_id`, derived from the
salt, so rows recorded under the old salt stay readable and are reported apart.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum

DEFAULT_HOLDOUT = 0.05
DEFAULT_CONTROL = 0.10
# Shares above this leave too few treated customers to act on; a typo such as 5 for 5% is refused.
MAX_SHARE = 0.5


class Group(StrEnum):
    HOLDOUT = "holdout"
    CONTROL = "control"
    TREATMENT = "treatment"


@dataclass(frozen=True)
class Assignment:
    experiment_id: str
    group: Group


def experiment_id(salt: str) -> str:
    """A stable, short name for the experiment a salt defines (the salt itself stays unlogged)."""
    return "exp-" + hashlib.sha256(salt.encode()).hexdigest()[:10]


def _unit(*parts: str) -> float:
    """A uniform number in [0, 1) from the parts; 64 bits of SHA-256 (not Python's salted hash)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def check_share(value: float, name: str) -> float:
    """The share, or ValueError naming the field: a fraction in [0, MAX_SHARE]."""
    if not 0.0 <= value <= MAX_SHARE:
        raise ValueError(f"{name} must be a fraction between 0 and {MAX_SHARE} (got {value})")
    return value


def assign(
    user_id: str,
    trigger: str,
    *,
    salt: str,
    holdout: float = DEFAULT_HOLDOUT,
    control: float = DEFAULT_CONTROL,
) -> Assignment:
    """The group of `user_id` for `trigger` in the experiment `salt` defines."""
    check_share(holdout, "holdout")
    check_share(control, "control")
    exp = experiment_id(salt)
    if _unit(salt, "holdout", user_id) < holdout:
        return Assignment(exp, Group.HOLDOUT)
    if _unit(salt, "control", trigger, user_id) < control:
        return Assignment(exp, Group.CONTROL)
    return Assignment(exp, Group.TREATMENT)


def expected_shares(holdout: float, control: float) -> dict[Group, float]:
    """The share of a trigger's customers each group should hold (the sample-ratio check's truth)."""
    return {
        Group.HOLDOUT: holdout,
        Group.CONTROL: (1 - holdout) * control,
        Group.TREATMENT: (1 - holdout) * (1 - control),
    }


@dataclass(frozen=True)
class Shares:
    """The configured group sizes: the global holdout and each trigger's control share.

    Read from the triggers file by whoever may (the agent's floor, `agent.experiment.shares_of`);
    the report only checks observed group sizes against them.
    """

    holdout: float = DEFAULT_HOLDOUT
    control: float = DEFAULT_CONTROL  # for a trigger the file does not name
    per_trigger: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_share(self.holdout, "holdout")
        check_share(self.control, "control")
        for name, share in self.per_trigger.items():
            check_share(share, f"control of {name}")

    def of(self, trigger: str) -> tuple[float, float]:
        """(holdout, control) for `trigger`."""
        return self.holdout, self.per_trigger.get(trigger, self.control)

    def overridden(self, holdout: float | None = None, control: float | None = None) -> Shares:
        """These shares with an explicit holdout and/or control (one control for every trigger)."""
        out = self if holdout is None else replace(self, holdout=holdout)
        return out if control is None else replace(out, control=control, per_trigger={})
