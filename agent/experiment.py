"""Holdout and control groups: deterministic, sticky assignment by a salted hash of the user id.

Every customer falls in one of three groups for a trigger:
- ``holdout``: the global holdout (default 5% of customers), never contacted by mca at all,
  whatever the trigger; the same customers for every trigger;
- ``control``: a per-trigger share (default 10%) of the rest, decided in full and recorded,
  nothing sent;
- ``treatment``: everyone else.

The hash is SHA-256 of ``salt:user_id`` (holdout) and ``salt:trigger:user_id`` (control), read
as a number in [0, 1): the same customer lands in the same group on every machine and every
restart, and the groups are independent of anything the customer does. The salt names the
experiment: a new salt starts a new experiment, and every job records the salt that assigned
it, so old decisions keep the group they had.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

DEFAULT_SALT = "mca-1"
DEFAULT_HOLDOUT = 0.05
DEFAULT_CONTROL = 0.10


class Group(StrEnum):
    HOLDOUT = "holdout"
    CONTROL = "control"
    TREATMENT = "treatment"


@dataclass(frozen=True)
class Assignment:
    group: Group
    experiment: str  # the salt that assigned it


def unit_interval(*parts: str) -> float:
    """A uniform number in [0, 1) from the parts: the first 8 bytes of their SHA-256."""
    digest = hashlib.sha256(":".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Experiment:
    """One experiment: its salt, the global holdout share and the default control share."""

    salt: str = DEFAULT_SALT
    holdout: float = DEFAULT_HOLDOUT
    control: float = DEFAULT_CONTROL

    def __post_init__(self) -> None:
        if not self.salt:
            raise ValueError("experiments.salt: must not be empty")
        for name, share in (("holdout", self.holdout), ("control", self.control)):
            if not 0 <= share < 1:
                raise ValueError(f"experiments.{name}: a share must be at least 0 and below 1, got {share}")

    def assign(self, user_id: str, trigger: str, control: float | None = None) -> Assignment:
        """The customer's group for `trigger` (`control` overrides the default control share)."""
        share = self.control if control is None else control
        if unit_interval(self.salt, user_id) < self.holdout:
            return Assignment(Group.HOLDOUT, self.salt)
        if unit_interval(self.salt, trigger, user_id) < share:
            return Assignment(Group.CONTROL, self.salt)
        return Assignment(Group.TREATMENT, self.salt)
