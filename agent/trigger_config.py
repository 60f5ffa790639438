"""The triggers file (``config/triggers.yaml``): live rules and opportunity queries.

Loaded into frozen objects once per change: the file is re-read when its modification time
changes, and an invalid edit is refused with the rule and field named while the previous
rules stay in force.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.conditions import Condition, parse_condition
from agent.durations import parse_duration
from agent.errors import TriggerConfigError

log = logging.getLogger(__name__)

KNOWN_TOOLS = frozenset(
    {"search_assets", "get_user_context", "send_coupon", "send_sms", "update_crm", "award_points"}
)


class _Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cooldown: timedelta = timedelta(days=1)
    user_cooldown: timedelta = timedelta(minutes=2)
    max_attempts: int = Field(default=3, ge=1, le=20)
    deadline: timedelta = timedelta(minutes=2)
    tools: list[str] = Field(default_factory=lambda: ["search_assets", "get_user_context", "send_coupon"])

    _durations = field_validator("cooldown", "user_cooldown", "deadline", mode="before")(
        lambda v: parse_duration(v)
    )


class _Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    goal: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    tools: list[str] | None = None
    cooldown: timedelta | None = None
    user_cooldown: timedelta | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    deadline: timedelta | None = None

    @field_validator("cooldown", "user_cooldown", "deadline", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta | None:
        return None if value is None else parse_duration(value)

    @field_validator("tools")
    @classmethod
    def _known_tools(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or []) - KNOWN_TOOLS)
        if unknown:
            raise ValueError(f"unknown tools {unknown}; known: {sorted(KNOWN_TOOLS)}")
        return value


class _Rule(_Trigger):
    event: str = Field(min_length=1)  # not `on`: YAML 1.1 reads a bare `on` key as true
    when: list[str] = Field(default_factory=list)


class _Opportunity(_Trigger):
    query: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.sql$")
    every: timedelta

    _every = field_validator("every", mode="before")(lambda v: parse_duration(v))


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    defaults: _Defaults = Field(default_factory=_Defaults)
    rules: list[_Rule] = Field(default_factory=list)
    opportunities: list[_Opportunity] = Field(default_factory=list)


@dataclass(frozen=True)
class TriggerSpec:
    """What both kinds of trigger share once defaults are applied."""

    name: str
    goal: str
    tools: tuple[str, ...]
    cooldown: timedelta
    user_cooldown: timedelta
    max_attempts: int
    deadline: timedelta


@dataclass(frozen=True)
class Rule(TriggerSpec):
    event_type: str
    conditions: tuple[Condition, ...]

    def needs(self, root: str) -> bool:
        return any(c.root == root for c in self.conditions)


@dataclass(frozen=True)
class Opportunity(TriggerSpec):
    query_file: Path
    sql: str
    every: timedelta


@dataclass(frozen=True)
class TriggerSet:
    rules: tuple[Rule, ...]
    opportunities: tuple[Opportunity, ...]
    by_event: dict[str, tuple[Rule, ...]] = field(default_factory=dict)

    def spec(self, name: str) -> TriggerSpec | None:
        for trigger in (*self.rules, *self.opportunities):
            if trigger.name == name:
                return trigger
        return None


def _location(err: dict[str, Any], raw: dict[str, Any]) -> str:
    loc = list(err["loc"])
    where = ".".join(str(p) for p in loc)
    if len(loc) >= 2 and loc[0] in ("rules", "opportunities") and isinstance(loc[1], int):
        items = raw.get(loc[0]) or []
        if loc[1] < len(items) and isinstance(items[loc[1]], dict) and items[loc[1]].get("name"):
            rest = ".".join(str(p) for p in loc[2:])
            where = f"{loc[0]}[{items[loc[1]]['name']}]" + (f".{rest}" if rest else "")
    return where


def parse_triggers(text: str, *, queries_dir: Path, source: str = "triggers.yaml") -> TriggerSet:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise TriggerConfigError(f"{source}{line}: not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(raw, dict):
        raise TriggerConfigError(f"{source}: expected a mapping with rules/opportunities")
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
        raise TriggerConfigError(f"{source}: {_location(dict(first), raw)}: {first['msg']}") from None
    d = parsed.defaults
    names: set[str] = set()

    def common(t: _Trigger, kind: str) -> dict[str, Any]:
        if t.name in names:
            raise TriggerConfigError(f"{source}: {kind}[{t.name}]: the name is used twice")
        names.add(t.name)
        return {
            "name": t.name,
            "goal": t.goal,
            "tools": tuple(t.tools if t.tools is not None else d.tools),
            "cooldown": t.cooldown if t.cooldown is not None else d.cooldown,
            "user_cooldown": t.user_cooldown if t.user_cooldown is not None else d.user_cooldown,
            "max_attempts": t.max_attempts or d.max_attempts,
            "deadline": t.deadline or d.deadline,
        }

    rules: list[Rule] = []
    for r in parsed.rules:
        try:
            conditions = tuple(parse_condition(c) for c in r.when)
        except ValueError as err:
            raise TriggerConfigError(f"{source}: rules[{r.name}].when: {err}") from None
        rules.append(Rule(**common(r, "rules"), event_type=r.event, conditions=conditions))
    opportunities: list[Opportunity] = []
    for o in parsed.opportunities:
        path = queries_dir / o.query
        if not path.is_file():
            raise TriggerConfigError(f"{source}: opportunities[{o.name}].query: no file {path}")
        opportunities.append(
            Opportunity(**common(o, "opportunities"), query_file=path, sql=path.read_text(), every=o.every)
        )
    by_event: dict[str, list[Rule]] = {}
    for rule in rules:
        by_event.setdefault(rule.event_type, []).append(rule)
    return TriggerSet(
        rules=tuple(rules),
        opportunities=tuple(opportunities),
        by_event={k: tuple(v) for k, v in by_event.items()},
    )


def load_triggers(path: Path, *, queries_dir: Path) -> TriggerSet:
    try:
        text = path.read_text()
    except OSError as err:
        raise TriggerConfigError(f"cannot read triggers file {path}: {err.strerror}") from None
    return parse_triggers(text, queries_dir=queries_dir, source=str(path))


class TriggerFile:
    """The triggers file, re-read when it changes; a bad edit keeps the last good rules."""

    def __init__(self, path: Path, *, queries_dir: Path) -> None:
        self.path = path
        self.queries_dir = queries_dir
        self._stamp = self._mtime()
        self.current = load_triggers(path, queries_dir=queries_dir)
        self.last_error: str | None = None

    def _mtime(self) -> int | None:
        try:
            return self.path.stat().st_mtime_ns
        except OSError:
            return None

    def refresh(self) -> TriggerSet:
        stamp = self._mtime()
        if stamp == self._stamp:
            return self.current
        self._stamp = stamp
        try:
            self.current = load_triggers(self.path, queries_dir=self.queries_dir)
            self.last_error = None
            log.info("triggers reloaded from %s", self.path)
        except TriggerConfigError as err:
            self.last_error = str(err)
            log.error("triggers file rejected, previous rules stay in force: %s", err)
        return self.current
