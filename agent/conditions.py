"""Rule conditions: ``"<path> <op> <literal>"`` parsed once when the triggers file loads.

Paths start with ``event.`` (the triggering event, ``event.properties.x`` included, and
``event.age``, seconds since it happened), ``stats.`` (the user's live ``user_stats`` row) or
``user.days_away`` (days since the user's previous event). Which fields exist and what kind
of value each holds is checked against the state schema when the file loads
(``agent.facts``). A condition over a missing value is false: a rule never fires on absent data.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import yaml

_CONDITION = re.compile(r"^\s*([a-z_][a-z0-9_.]*)\s*(>=|<=|==|!=|>|<|\bin\b)\s*(.+?)\s*$")
_OPS: dict[str, Callable[[Any, Any], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
    "in": lambda a, b: a in b,
}
ROOTS = ("event", "stats", "user")


def as_time(value: Any) -> datetime | None:
    """An aware datetime from a datetime, a date (midnight UTC) or an ISO string; else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return as_time(datetime.fromisoformat(value))
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Condition:
    text: str
    path: tuple[str, ...]
    op: str
    literal: Any
    kind: str = "any"  # set by agent.facts.typed: how the value is read before comparing

    @property
    def root(self) -> str:
        return self.path[0]

    def holds(self, facts: Mapping[str, Any]) -> bool:
        value: Any = facts
        for part in self.path:
            if not isinstance(value, Mapping) or part not in value:
                return False
            value = value[part]
        if value is None:
            return False
        if isinstance(value, Decimal):
            value = float(value)
        if self.kind == "time":
            value = as_time(value)
            if value is None:
                return False
        try:
            return bool(_OPS[self.op](value, self.literal))
        except TypeError:
            return False  # comparing a string with a number: the data does not satisfy the rule


def parse_condition(text: str) -> Condition:
    """Parse one condition; ValueError says what is wrong with it."""
    if not isinstance(text, str):
        raise ValueError(f"a condition is a string like 'event.value >= 100', not {text!r}")
    match = _CONDITION.match(text)
    if not match:
        raise ValueError(f"cannot parse condition {text!r} (expected '<path> <op> <value>')")
    path = tuple(match.group(1).split("."))
    if path[0] not in ROOTS or len(path) < 2:
        raise ValueError(f"condition {text!r}: path must start with one of {', '.join(ROOTS)}")
    try:
        literal = yaml.safe_load(match.group(3))
    except yaml.YAMLError:
        raise ValueError(f"condition {text!r}: cannot read the value {match.group(3)!r}") from None
    op = match.group(2)
    if op == "in" and not isinstance(literal, list):
        raise ValueError(f"condition {text!r}: 'in' needs a list such as [a, b]")
    return Condition(text=text.strip(), path=path, op=op, literal=literal)
