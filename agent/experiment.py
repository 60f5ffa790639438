"""The triggers file's experiment: its salt and group sizes, applied when a trigger fires.

The assignment itself (a salted hash of the user id: global holdout, per-trigger control,
treatment) is `measure.assign`, the one the uplift report checks group sizes against; this
module holds what the triggers file sets and hands each job its group.
"""

from __future__ import annotations

from dataclasses import dataclass

from measure.assign import DEFAULT_CONTROL, DEFAULT_HOLDOUT, Assignment, Group, assign, check_share

DEFAULT_SALT = "mca-1"

__all__ = ["DEFAULT_CONTROL", "DEFAULT_HOLDOUT", "DEFAULT_SALT", "Assignment", "Experiment", "Group"]


@dataclass(frozen=True)
class Experiment:
    """One experiment: its salt, the global holdout share and the default control share."""

    salt: str = DEFAULT_SALT
    holdout: float = DEFAULT_HOLDOUT
    control: float = DEFAULT_CONTROL

    def __post_init__(self) -> None:
        if not self.salt:
            raise ValueError("experiments.salt: must not be empty")
        check_share(self.holdout, "experiments.holdout")
        check_share(self.control, "experiments.control")

    def assign(self, user_id: str, trigger: str, control: float | None = None) -> Assignment:
        """The customer's group for `trigger` (`control` overrides the default control share)."""
        share = self.control if control is None else control
        return assign(user_id, trigger, salt=self.salt, holdout=self.holdout, control=share)
