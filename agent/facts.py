"""The facts a live rule may test, and their kinds, derived from the state schema itself.

``event.*`` are the fields the trigger service hands a rule (``agent.sources.event_of``)
typed by the ``events`` table; ``stats.*`` are the columns of the ``user_stats`` view, typed
by sqlglot's type inference over the view SQL; ``event.age`` and ``user.days_away`` are
computed by the trigger service. A new column in the SQL is a new fact with no edit here,
and a typo (``stats.churn_scor``) or a literal of the wrong kind (``event.value >= "100"``)
is refused when the triggers file loads.
"""

from __future__ import annotations

import difflib
import logging
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from agent.conditions import Condition, as_time
from agent.sources import EVENT_COLUMNS, event_of
from mca.db import Engine
from mca.durations import parse_duration
from mca.migrate import migration_files

Kind = Literal["number", "text", "time", "bool", "json", "duration", "any"]
ORDERING = frozenset({">=", "<=", ">", "<"})
# event_of names the event_type column `type`; every other field keeps its column's name.
EVENT_FIELD_COLUMN = {"type": "event_type"}
COMPUTED: dict[str, dict[str, Kind]] = {"event": {"age": "duration"}, "user": {"days_away": "number"}}
_SQL_KINDS: dict[str, Kind] = {
    "TEXT": "text", "VARCHAR": "text", "CHAR": "text", "NAME": "text",
    "INT": "number", "SMALLINT": "number", "BIGINT": "number", "DECIMAL": "number", "DOUBLE": "number",
    "FLOAT": "number", "REAL": "number", "NUMERIC": "number",
    "TIMESTAMPTZ": "time", "TIMESTAMP": "time", "DATE": "time",
    "BOOLEAN": "bool", "JSONB": "json", "JSON": "json",
}  # fmt: skip


@dataclass(frozen=True)
class FactSchema:
    roots: dict[str, dict[str, Kind]]

    def kind_of(self, path: tuple[str, ...]) -> Kind:
        """The kind of the value at `path`; ValueError names an unknown root or field."""
        fields = self.roots.get(path[0])
        if fields is None:
            raise ValueError(f"path must start with one of {', '.join(self.roots)}")
        name = path[1]
        if name not in fields:
            close = difflib.get_close_matches(name, fields, n=1)
            hint = f" (did you mean {path[0]}.{close[0]}?)" if close else ""
            raise ValueError(f"{path[0]} has no field {name!r}{hint}; known: {', '.join(sorted(fields))}")
        kind = fields[name]
        if kind == "json":
            if len(path) < 3:
                raise ValueError(f"{path[0]}.{name} is an object: name a field, e.g. {path[0]}.{name}.score")
            return "any"  # what producers put inside is theirs to name
        if len(path) > 2:
            raise ValueError(f"{path[0]}.{name} is a {kind}, it has no field {path[2]!r}")
        return kind


def _kind_of_sql(data_type: Any) -> Kind:
    text = data_type.sql("postgres").upper() if data_type is not None else ""
    base = re.match(r"[A-Z]*", text)  # DECIMAL(14, 2) -> DECIMAL, DOUBLE PRECISION -> DOUBLE
    return _SQL_KINDS.get(base.group() if base else "", "any")


def _columns(statement: Any, schema: dict[str, object]) -> tuple[str, dict[str, Any]] | None:
    """(name, column -> sqlglot type) of a CREATE TABLE or CREATE VIEW; None for anything else."""
    from sqlglot import exp
    from sqlglot.errors import SqlglotError
    from sqlglot.optimizer.annotate_types import annotate_types
    from sqlglot.optimizer.qualify import qualify

    if not isinstance(statement, exp.Create):
        return None
    target = statement.this
    if statement.kind == "TABLE" and isinstance(target, exp.Schema):
        defs = [c for c in target.expressions if isinstance(c, exp.ColumnDef)]
        return target.this.name, {c.name: c.args["kind"] for c in defs}
    if (
        statement.kind == "VIEW"
        and isinstance(target, exp.Table)
        and isinstance(statement.expression, exp.Query)
    ):
        try:
            query = qualify(statement.expression, schema=schema, dialect="postgres")
            query = annotate_types(query, schema=schema, dialect="postgres")
        except SqlglotError:
            return None  # a view no rule can name a field of
        return target.name, {s.alias_or_name: s.type for s in query.selects}
    return None


def _relations(state_dir: Path) -> dict[str, dict[str, Kind]]:
    """Column kinds of every table and view the PostgreSQL state schema creates, in file order
    (a view's types come from the relations before it)."""
    import sqlglot

    logging.getLogger("sqlglot").setLevel(logging.ERROR)
    schema: dict[str, object] = {}
    kinds: dict[str, dict[str, Kind]] = {}
    for migration in migration_files(state_dir.parent, state_dir.name):
        if not migration.runs_on(Engine.POSTGRES):
            continue
        try:
            statements = sqlglot.parse(migration.text, read="postgres")
        except sqlglot.errors.SqlglotError:
            continue
        for statement in statements:
            found = _columns(statement, schema)
            if found is None:
                continue
            name, columns = found
            if migration.engine_only is not None and name in kinds:
                # The portable definition is the contract; an engine's own rewrite of the
                # same relation (PostgreSQL's maintained user_stats) keeps its columns and
                # may only add new ones (CREATE OR REPLACE VIEW appends them).
                added = {c: t for c, t in columns.items() if c not in kinds[name]}
                known = schema[name]
                assert isinstance(known, dict)
                schema[name] = known | {c: t.sql("postgres") for c, t in added.items() if t}
                kinds[name] |= {c: _kind_of_sql(t) for c, t in added.items()}
                continue
            schema[name] = {c: t.sql("postgres") for c, t in columns.items() if t is not None}
            kinds[name] = {c: _kind_of_sql(t) for c, t in columns.items()}
    return kinds


@lru_cache(maxsize=4)
def fact_schema(state_dir: Path) -> FactSchema:
    relations = _relations(state_dir)
    for needed in ("events", "user_stats"):
        if needed not in relations:
            raise ValueError(
                f"no {needed} table or view in {state_dir}: cannot tell which facts rules may use"
            )
    columns = [c.strip() for c in EVENT_COLUMNS.split(",")]
    shape = event_of({c: None for c in columns} | {"event_id": "", "user_id": "", "event_type": ""})
    events = relations["events"]
    event_fields: dict[str, Kind] = {
        name: events.get(EVENT_FIELD_COLUMN.get(name, name), "any") for name in shape
    }
    return FactSchema(
        {
            "event": event_fields | COMPUTED["event"],
            "stats": {c: k for c, k in relations["user_stats"].items() if c != "user_id"},
            "user": dict(COMPUTED["user"]),
        }
    )


def _literal_for(kind: Kind, literal: Any, op: str) -> Any:
    """The literal converted for comparison with a `kind` value; ValueError when it cannot be."""
    if isinstance(literal, list):
        if op != "in":
            raise ValueError(f"is compared with a list: use 'in' ({literal!r})")
        return [_literal_for(kind, item, "==") for item in literal]
    if literal is None:
        raise ValueError("null is never compared (a condition over a missing value is false)")
    number = isinstance(literal, int | float) and not isinstance(literal, bool)
    if kind == "number" and not number:
        raise ValueError(f"is a number, but {literal!r} is not (write it without quotes)")
    if kind == "duration":
        try:
            return parse_duration(literal).total_seconds()
        except ValueError:
            raise ValueError(f"is a duration, but {literal!r} is not (write e.g. 30m, 1h, 2d)") from None
    if kind == "text" and not isinstance(literal, str):
        raise ValueError(f"is text, but {literal!r} is not (quote it: '{literal}')")
    if kind == "bool" and (not isinstance(literal, bool) or op in ORDERING):
        raise ValueError("is true or false: compare it with == true or == false")
    if kind == "time":
        moment = as_time(literal)
        if moment is None:
            raise ValueError(f"is a time, but {literal!r} is not a date or ISO time")
        return moment
    return literal


def typed(condition: Condition, schema: FactSchema) -> Condition:
    """The condition checked against the schema, its literal converted; ValueError says why not."""
    try:
        kind = schema.kind_of(condition.path)
    except ValueError as err:
        raise ValueError(f"condition {condition.text!r}: {err}") from None
    try:
        literal = _literal_for(kind, condition.literal, condition.op)
    except ValueError as err:
        raise ValueError(f"condition {condition.text!r}: {'.'.join(condition.path)} {err}") from None
    return replace(condition, kind=kind, literal=literal)
