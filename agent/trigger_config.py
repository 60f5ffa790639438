"""The triggers file (``config/triggers.yaml``): live rules and opportunity queries.

Loaded into frozen objects once per change: the file is re-read when its modification time
changes, and an invalid edit is refused with the rule and field named while the previous
rules stay in force. Beyond the file's shape, every condition's path and literal are checked
against the state schema (``agent.facts``) and every goal against its prompt file, so a typo
is an error at load time (and in ``mca triggers check``), not a rule that never fires.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.conditions import Condition, parse_condition
from agent.errors import TriggerConfigError
from agent.experiment import DEFAULT_CONTROL, DEFAULT_HOLDOUT, DEFAULT_SALT, Experiment
from agent.facts import FactSchema, fact_schema, typed
from learn.allocate import SelectionMode
from mca.durations import parse_duration
from mca.reloading import ReloadingFile
from mca.settings import PROJECT_ROOT
from mcp_tools.contract import ALL_TOOLS, Tool
from measure.assign import MAX_SHARE

log = logging.getLogger(__name__)

_T = TypeVar("_T", bound=BaseModel)
DEFAULT_PROMPTS = PROJECT_ROOT / "prompts"
KNOWN_TOOLS = frozenset(t.value for t in ALL_TOOLS)
DEFAULT_TOOLS = (Tool.SEARCH_ASSETS.value, Tool.GET_USER_CONTEXT.value, Tool.SEND_COUPON.value)
DEFAULT_WINDOW = timedelta(days=7)


class _Defaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cooldown: timedelta = timedelta(days=1)
    user_cooldown: timedelta = timedelta(minutes=2)
    max_attempts: int = Field(default=3, ge=1, le=20)
    deadline: timedelta = timedelta(minutes=2)
    # Live rules ignore events older than this (a backfill, a replay, a device offline for a
    # month): "just bought" must mean just, and an old event must not spend the cooldown.
    max_event_age: timedelta = timedelta(hours=1)
    tools: list[str] = Field(default_factory=lambda: list(DEFAULT_TOOLS))

    _durations = field_validator("cooldown", "user_cooldown", "deadline", "max_event_age", mode="before")(
        lambda v: parse_duration(v)
    )


class _Experiments(BaseModel):
    """The holdout and control groups (agent.experiment): a new salt starts a new experiment."""

    model_config = ConfigDict(extra="forbid")
    salt: str = Field(default=DEFAULT_SALT, min_length=1, max_length=64)
    holdout: float = Field(default=DEFAULT_HOLDOUT, ge=0, le=MAX_SHARE)
    control: float = Field(default=DEFAULT_CONTROL, ge=0, le=MAX_SHARE)


class _Attribution(BaseModel):
    """How long after a decision an outcome still counts for it: a default, and per goal."""

    model_config = ConfigDict(extra="forbid")
    window: timedelta = DEFAULT_WINDOW
    goals: dict[str, timedelta] = Field(default_factory=dict)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> timedelta:
        return _positive_window(value)

    @field_validator("goals", mode="before")
    @classmethod
    def _goal_windows(cls, value: Any) -> dict[str, timedelta]:
        if not isinstance(value, dict):
            raise ValueError("expected a mapping of goal to window, e.g. {cart_recovery: 3d}")
        return {str(goal): _positive_window(window) for goal, window in value.items()}


def _positive_window(value: Any) -> timedelta:
    window = parse_duration(value)
    if not timedelta(minutes=1) <= window <= timedelta(days=90):
        raise ValueError(f"an attribution window must be between 1m and 90d, got {value!r}")
    return window


class _Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    goal: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    tools: list[str] | None = None
    cooldown: timedelta | None = None
    user_cooldown: timedelta | None = None
    max_attempts: int | None = Field(default=None, ge=1, le=20)
    deadline: timedelta | None = None
    control: float | None = Field(default=None, ge=0, le=MAX_SHARE)  # this trigger's control share
    # How the action is chosen among the brain's guard-allowed candidates (learn.allocate).
    selection: SelectionMode = SelectionMode.MODEL

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
    max_event_age: timedelta | None = None

    _age = field_validator("max_event_age", mode="before")(lambda v: None if v is None else parse_duration(v))


class _Opportunity(_Trigger):
    query: str = Field(pattern=r"^[A-Za-z0-9_.-]+\.sql$")
    every: timedelta

    _every = field_validator("every", mode="before")(lambda v: parse_duration(v))


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = 1
    defaults: _Defaults = Field(default_factory=_Defaults)
    experiments: _Experiments = Field(default_factory=_Experiments)
    attribution: _Attribution = Field(default_factory=_Attribution)
    # Items are validated one by one (`_items`), so one bad rule does not hide another's problems.
    rules: list[Any] = Field(default_factory=list)
    opportunities: list[Any] = Field(default_factory=list)


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
    control_share: float
    attribution_window: timedelta
    selection: SelectionMode


@dataclass(frozen=True)
class Rule(TriggerSpec):
    event_type: str
    conditions: tuple[Condition, ...]
    max_event_age: timedelta

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
    experiment: Experiment = field(default_factory=Experiment)


def _where(err: Mapping[str, Any], prefix: str = "") -> str:
    return ".".join([prefix, *(str(p) for p in err["loc"])]).strip(".") if prefix or err["loc"] else ""


def _read(text: str, source: str) -> _File:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise TriggerConfigError(f"{source}{line}: not valid YAML: {getattr(err, 'problem', err)}") from None
    if not isinstance(raw, dict):
        raise TriggerConfigError(f"{source}: expected a mapping with rules/opportunities")
    try:
        return _File.model_validate(raw)
    except ValidationError as err:
        problems = [f"{source}: {_where(e)}: {e['msg']}" for e in err.errors()]
        raise TriggerConfigError("\n".join(problems)) from None


def _items(model: type[_T], kind: str, items: list[Any], problems: list[str]) -> list[_T]:
    """The items that have the right shape; the others' problems, placed by name (or index)."""
    valid: list[_T] = []
    for index, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        place = f"{kind}[{name if isinstance(name, str) and name else index}]"
        try:
            valid.append(model.model_validate(item))
        except ValidationError as err:
            problems.extend(f"{_where(e, place)}: {e['msg']}" for e in err.errors())
    return valid


def known_goals(prompts_dir: Path) -> frozenset[str]:
    """Goals with a prompt file: ``prompts/goals/<goal>.md``."""
    return frozenset(p.stem for p in (prompts_dir / "goals").glob("*.md"))


class _Builder:
    """Turns the validated file into triggers, collecting every problem with its place."""

    def __init__(
        self,
        defaults: _Defaults,
        *,
        queries_dir: Path,
        prompts_dir: Path,
        schema: FactSchema,
        control: float = DEFAULT_CONTROL,
        attribution: _Attribution | None = None,
    ) -> None:
        self.defaults = defaults
        self.control = control
        self.attribution = attribution or _Attribution()
        self.queries_dir = queries_dir
        self.prompts_dir = prompts_dir
        self.goals = known_goals(prompts_dir)
        self.schema = schema
        self.names: set[str] = set()
        self.problems: list[str] = []

    def common(self, t: _Trigger, where: str) -> dict[str, Any]:
        d = self.defaults
        if t.name in self.names:
            self.problems.append(f"{where}: the name is used twice")
        self.names.add(t.name)
        if t.goal not in self.goals:
            close = difflib.get_close_matches(t.goal, self.goals, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            self.problems.append(
                f"{where}.goal: no prompt file {self.prompts_dir / 'goals' / (t.goal + '.md')} "
                f"({hint}goals: {', '.join(sorted(self.goals))})"
            )
        return {
            "name": t.name,
            "goal": t.goal,
            "tools": tuple(t.tools if t.tools is not None else d.tools),
            "cooldown": t.cooldown if t.cooldown is not None else d.cooldown,
            "user_cooldown": t.user_cooldown if t.user_cooldown is not None else d.user_cooldown,
            "max_attempts": t.max_attempts or d.max_attempts,
            "deadline": t.deadline or d.deadline,
            "control_share": self.control if t.control is None else t.control,
            "attribution_window": self.attribution.goals.get(t.goal, self.attribution.window),
            "selection": t.selection,
        }

    def rule(self, r: _Rule) -> Rule:
        where = f"rules[{r.name}]"
        common = self.common(r, where)
        conditions: list[Condition] = []
        for text in r.when:
            try:
                conditions.append(typed(parse_condition(text), self.schema))
            except ValueError as err:
                self.problems.append(f"{where}.when: {err}")
        age = r.max_event_age if r.max_event_age is not None else self.defaults.max_event_age
        return Rule(**common, event_type=r.event, conditions=tuple(conditions), max_event_age=age)

    def opportunity(self, o: _Opportunity) -> Opportunity | None:
        where = f"opportunities[{o.name}]"
        common = self.common(o, where)
        path = self.queries_dir / o.query
        if not path.is_file():
            self.problems.append(f"{where}.query: no file {path}")
            return None
        return Opportunity(**common, query_file=path, sql=path.read_text(), every=o.every)


def parse_triggers(
    text: str,
    *,
    queries_dir: Path,
    prompts_dir: Path = DEFAULT_PROMPTS,
    state_dir: Path | None = None,
    source: str = "triggers.yaml",
) -> TriggerSet:
    """The triggers in `text`, or TriggerConfigError listing every problem, one a line, each
    naming the rule and field. Fact paths are checked against the state schema (by default
    ``sql/state`` beside `queries_dir`), goals against the prompt files."""
    parsed = _read(text, source)
    try:
        schema = fact_schema(state_dir or queries_dir.parent / "state")
    except ValueError as err:
        raise TriggerConfigError(f"{source}: {err}") from None
    exp = parsed.experiments
    build = _Builder(
        parsed.defaults,
        queries_dir=queries_dir,
        prompts_dir=prompts_dir,
        schema=schema,
        control=exp.control,
        attribution=parsed.attribution,
    )
    for goal in sorted(set(parsed.attribution.goals) - build.goals):
        build.problems.append(
            f"attribution.goals.{goal}: no such goal (goals: {', '.join(sorted(build.goals))})"
        )
    rules = [build.rule(r) for r in _items(_Rule, "rules", parsed.rules, build.problems)]
    opportunities = [
        o
        for o in (
            build.opportunity(o)
            for o in _items(_Opportunity, "opportunities", parsed.opportunities, build.problems)
        )
        if o is not None
    ]
    if build.problems:
        raise TriggerConfigError("\n".join(f"{source}: {p}" for p in build.problems))
    by_event: dict[str, list[Rule]] = {}
    for rule in rules:
        by_event.setdefault(rule.event_type, []).append(rule)
    return TriggerSet(
        rules=tuple(rules),
        opportunities=tuple(opportunities),
        by_event={k: tuple(v) for k, v in by_event.items()},
        experiment=Experiment(exp.salt, exp.holdout, exp.control),
    )


def load_triggers(path: Path, *, queries_dir: Path, prompts_dir: Path = DEFAULT_PROMPTS) -> TriggerSet:
    try:
        text = path.read_text()
    except OSError as err:
        raise TriggerConfigError(f"cannot read triggers file {path}: {err.strerror}") from None
    return parse_triggers(text, queries_dir=queries_dir, prompts_dir=prompts_dir, source=str(path))


class TriggerFile:
    """The triggers file, re-read when it changes (`mca.reloading`); a bad edit keeps the last good rules."""

    def __init__(self, path: Path, *, queries_dir: Path, prompts_dir: Path = DEFAULT_PROMPTS) -> None:
        self.path = path
        self.queries_dir = queries_dir
        self.prompts_dir = prompts_dir
        self._file = ReloadingFile(
            path,
            lambda p: load_triggers(p, queries_dir=queries_dir, prompts_dir=prompts_dir),
            rejects=(TriggerConfigError,),
            on_reload=lambda _old, _new: log.info("triggers reloaded from %s", path),
            what="triggers file",
        )

    @property
    def current(self) -> TriggerSet:
        """The last good rules, without looking at the file."""
        return self._file.value

    @property
    def last_error(self) -> str | None:
        return None if self._file.last_error is None else str(self._file.last_error)

    def refresh(self) -> TriggerSet:
        return self._file.current()
