"""View files: ``sql/state`` files that only define views, re-created when their text changes.

A table keeps rows, so its file is history and never changes; a view keeps only its SQL, so
its file is the definition as it stands, as a dbt model is. A state file whose every statement
is ``CREATE [MATERIALIZED] VIEW name AS …`` is a view file: the runner creates its views after
the other files (so a table or ops file never reads a view), in the order they read each other,
and records each view's checksum in ``mca_views``. When a definition changes, that view and
every view reading it are dropped, dependents first, and created again from the current text.
On PostgreSQL that happens in one transaction under an advisory lock; on RisingWave, where a
materialized view cannot be altered and DDL is not transactional, view by view, each drop and
create recorded as it lands, so an interrupted run resumes.

On PostgreSQL a portable view whose name a PostgreSQL-only view file also defines (the
maintained ``user_stats`` of file 103) keeps its portable SQL as ``<name>_recomputed``, and so
does every portable view reading one of those, reading the other ``_recomputed`` twins: they
are what the maintained rows are tested against. The plain name is the PostgreSQL-only one.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import psycopg

from mca.db import Engine
from mca.errors import MigrationError

TWIN_SUFFIX = "_recomputed"
_CREATE_VIEW = re.compile(r"^CREATE\s+(?:MATERIALIZED\s+)?VIEW\s+(\w+)\s+AS\b", re.IGNORECASE)
_LITERAL = re.compile(r"'(?:[^']|'')*'")

VIEWS_DDL = """
CREATE TABLE IF NOT EXISTS mca_views (
    store      varchar NOT NULL,
    name       varchar NOT NULL,
    filename   varchar NOT NULL,
    checksum   varchar NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (store, name)
)
"""
_LOCK = "SELECT pg_advisory_xact_lock(hashtext('mca_views'))"
_EXISTING = {
    Engine.POSTGRES: "SELECT relname AS name FROM pg_class "
    "WHERE relkind IN ('v', 'm') AND relnamespace = current_schema()::regnamespace",
    Engine.RISINGWAVE: "SELECT name FROM rw_catalog.rw_relations "
    "WHERE relation_type IN ('view', 'materialized view')",
}


@dataclass(frozen=True)
class View:
    name: str
    filename: str
    sql: str  # the CREATE statement as this engine runs it
    reads: frozenset[str]  # the other planned views it reads
    materialized: bool

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def drop(self) -> str:
        return f"DROP {'MATERIALIZED VIEW' if self.materialized else 'VIEW'} {self.name}"


def view_statements(statements: list[str]) -> list[tuple[str, str]] | None:
    """``[(name, statement)]`` when every statement creates a view; None otherwise."""
    found = [(_CREATE_VIEW.match(s), s) for s in statements]
    if not found or any(m is None for m, _ in found):
        return None
    return [(m.group(1), s) for m, s in found if m is not None]


@dataclass(frozen=True)
class Definition:
    name: str
    filename: str
    sql: str
    portable: bool


def plan(definitions: list[Definition], engine: Engine) -> list[View]:
    """Every view to exist on `engine`, in an order where each follows the views it reads."""
    named = _with_twins(definitions) if engine is Engine.POSTGRES else definitions
    seen: dict[str, str] = {}
    for d in named:
        if d.name in seen:
            raise MigrationError(f"view {d.name} is defined twice: in {seen[d.name]} and in {d.filename}")
        seen[d.name] = d.filename
    names = set(seen)
    views = [
        View(d.name, d.filename, d.sql, frozenset(_reads(d.sql, names - {d.name})), _is_materialized(d.sql))
        for d in named
    ]
    return _in_dependency_order(views)


def _with_twins(definitions: list[Definition]) -> list[Definition]:
    overridden = {d.name for d in definitions if not d.portable}
    portable = [d for d in definitions if d.portable]
    twinned = set(overridden & {d.name for d in portable})
    changed = True
    while changed:  # a portable view reading a twinned one is twinned too
        changed = False
        for d in portable:
            if d.name not in twinned and _reads(d.sql, twinned):
                twinned.add(d.name)
                changed = True
    out: list[Definition] = []
    for d in definitions:
        if d.portable and d.name in twinned:
            out.append(Definition(d.name + TWIN_SUFFIX, d.filename, _rename(d.sql, twinned), True))
        if not d.portable or d.name not in overridden:
            out.append(d)
    return out


def _rename(sql: str, names: set[str]) -> str:
    pattern = re.compile(r"\b(" + "|".join(sorted(names)) + r")\b")
    return pattern.sub(lambda m: m.group(1) + TWIN_SUFFIX, sql)


def _reads(sql: str, names: Iterable[str]) -> set[str]:
    # Names inside string literals are data, not relations (jsonb keys, LIKE patterns).
    words = set(re.findall(r"\b\w+\b", _LITERAL.sub("''", sql)))
    return {n for n in names if n in words}


def _is_materialized(sql: str) -> bool:
    return re.match(r"^CREATE\s+MATERIALIZED\b", sql, re.IGNORECASE) is not None


def _in_dependency_order(views: list[View]) -> list[View]:
    done: list[View] = []
    placed: set[str] = set()
    waiting = list(views)
    while waiting:
        ready = [v for v in waiting if v.reads <= placed]
        if not ready:
            cycle = ", ".join(f"{v.name} ({v.filename})" for v in waiting)
            raise MigrationError(f"views that read each other in a cycle: {cycle}")
        first = ready[0]  # file order among the ready ones
        done.append(first)
        placed.add(first.name)
        waiting.remove(first)
    return done


Conn = psycopg.Connection[dict]  # type: ignore[type-arg]


@dataclass
class ViewReport:
    created: list[View]  # new or re-created, in creation order
    dropped: list[str]  # dropped and not defined any more


def sync_views(
    conn: Conn,
    engine: Engine,
    store: str,
    views: list[View],
    run: Callable[[str, str], None],
) -> ViewReport:
    """Make the store's views those of `views`; `run(filename, sql)` sends one statement."""
    conn.execute(VIEWS_DDL)
    if engine is Engine.POSTGRES:
        with conn.transaction():
            conn.execute(_LOCK)
            return _sync(conn, engine, store, views, run)
    return _sync(conn, engine, store, views, run)


def _sync(
    conn: Conn, engine: Engine, store: str, views: list[View], run: Callable[[str, str], None]
) -> ViewReport:
    recorded = {
        r["name"]: r["checksum"]
        for r in conn.execute("SELECT name, checksum FROM mca_views WHERE store = %s", (store,))
    }
    planned = {v.name for v in views}
    # Only views this runner owns: planned or recorded (the ops store may share the database).
    existing = {r["name"] for r in conn.execute(_EXISTING[engine])} & (planned | set(recorded))
    stale = {v.name for v in views if v.name in existing and recorded.get(v.name) != v.checksum}
    gone = sorted((set(recorded) | existing) - planned)
    for v in views:  # views is in dependency order: a reader comes after what it reads
        if v.reads & stale and v.name in existing:
            stale.add(v.name)
    report = ViewReport([], [])
    for name in gone:
        if name in existing:
            run("", _drop_gone(conn, engine, name))
        _forget(conn, store, name)
        report.dropped.append(name)
    for v in reversed(views):
        if v.name in stale:
            run(v.filename, v.drop)
            _forget(conn, store, v.name)
            existing.discard(v.name)
    for v in views:
        if v.name not in existing:
            run(v.filename, v.sql)
            _remember(conn, store, v)
            report.created.append(v)
        elif v.name not in recorded:
            _remember(conn, store, v)
    return report


def _drop_gone(conn: Conn, engine: Engine, name: str) -> str:
    if engine is Engine.RISINGWAVE:
        return f"DROP MATERIALIZED VIEW {name}"  # view files make materialized views there
    kind = conn.execute(
        "SELECT CASE WHEN relkind = 'm' THEN 'MATERIALIZED VIEW' ELSE 'VIEW' END AS kind "
        "FROM pg_class WHERE relname = %s AND relnamespace = current_schema()::regnamespace",
        (name,),
    ).fetchone()
    return f"DROP {kind['kind'] if kind else 'MATERIALIZED VIEW'} {name}"


def _forget(conn: Conn, store: str, name: str) -> None:
    conn.execute("DELETE FROM mca_views WHERE store = %s AND name = %s", (store, name))


def _remember(conn: Conn, store: str, view: View) -> None:
    _forget(conn, store, view.name)
    conn.execute(
        "INSERT INTO mca_views (store, name, filename, checksum, created_at) VALUES (%s, %s, %s, %s, now())",
        (store, view.name, view.filename, view.checksum),
    )


def definitions_of(
    files: Iterable[tuple[str, bool, list[str]]],
) -> list[Definition]:
    """(filename, portable, statements) of each view file → its definitions, in file order."""
    out: list[Definition] = []
    for filename, portable, statements in files:
        for name, sql in view_statements(statements) or []:
            out.append(Definition(name, filename, sql, portable))
    return out
