"""The migration runner: applies ``sql/state`` to the state store and ``sql/ops`` to the ops store.

Each file is applied once, in file-name order, and recorded with its checksum; a file that
changed after it was applied stops the run (write a new file instead). State files that only
define views are the exception (`mca.views`): they are created after the others and re-created
whenever their definition changes. Files speak the SQL
both engines accept; a header line ``-- engine: postgres`` or ``-- engine: risingwave``
restricts a file to one engine. On PostgreSQL, materialized views become plain views: the
same definitions are computed at read time over indexed tables.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg

from mca.db import Engine, connect, detect_engine
from mca.errors import MigrationError
from mca.settings import Settings, mask_url
from mca.views import Definition, plan, sync_views, view_statements

_ENGINE_MARK = re.compile(r"^--\s*engine:\s*(postgres|risingwave)\s*$", re.MULTILINE)
_MATVIEW = re.compile(r"\bCREATE\s+MATERIALIZED\s+VIEW\b", re.IGNORECASE)
_DROP_MATVIEW = re.compile(r"\bDROP\s+MATERIALIZED\s+VIEW\b", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")

LEDGER_DDL = """
CREATE TABLE IF NOT EXISTS mca_migrations (
    store      varchar NOT NULL,
    filename   varchar NOT NULL,
    checksum   varchar NOT NULL,
    engine     varchar NOT NULL,
    applied_at timestamptz NOT NULL,
    PRIMARY KEY (store, filename)
)
"""


@dataclass(frozen=True)
class MigrationFile:
    store: str  # "state" or "ops"
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def text(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()

    @property
    def engine_only(self) -> Engine | None:
        match = _ENGINE_MARK.search(self.text)
        return Engine(match.group(1)) if match else None

    def runs_on(self, engine: Engine) -> bool:
        only = self.engine_only
        return only is None or only == engine

    @property
    def defines_only_views(self) -> bool:
        return self.store == "state" and view_statements(split_statements(self.text)) is not None


def migration_files(sql_dir: Path, store: str) -> list[MigrationFile]:
    return [MigrationFile(store, p) for p in sorted((sql_dir / store).glob("*.sql"))]


def render(sql: str, engine: Engine, variables: Mapping[str, str]) -> str:
    """The SQL as it is sent to `engine`: dialect rewrite plus `{{name}}` placeholders."""
    if engine is Engine.POSTGRES:
        sql = _MATVIEW.sub("CREATE VIEW", sql)
        sql = _DROP_MATVIEW.sub("DROP VIEW", sql)

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in variables:
            raise MigrationError(f"unknown placeholder {{{{{key}}}}} in migration SQL")
        return variables[key]

    return _PLACEHOLDER.sub(substitute, sql)


def template_variables(settings: Settings) -> dict[str, str]:
    return {"kafka_topic": settings.kafka.topic, "kafka_brokers": settings.kafka.brokers}


@dataclass
class MigrationReport:
    applied: list[str]
    skipped_other_engine: list[str]
    already_applied: list[str]


def migrate_store(
    url: str,
    store: str,
    files: list[MigrationFile],
    variables: Mapping[str, str],
    *,
    require_postgres: bool = False,
    on_apply: Callable[[str], None] | None = None,
) -> MigrationReport:
    report = MigrationReport([], [], [])
    with connect(url, autocommit=True) as conn:
        engine = detect_engine(conn)
        if engine is Engine.RISINGWAVE:
            # After a DROP, psycopg clears its prepared statements with DEALLOCATE ALL, which
            # RisingWave does not accept; without server-side prepares it never sends one.
            conn.prepare_threshold = None
        if require_postgres and engine is not Engine.POSTGRES:
            raise MigrationError(
                f"the {store} store must be PostgreSQL, but {mask_url(url)} is {engine.value}"
            )
        conn.execute(LEDGER_DDL)
        applied = {
            row["filename"]: row["checksum"]
            for row in conn.execute(
                "SELECT filename, checksum FROM mca_migrations WHERE store = %s", (store,)
            )
        }
        # Refuse before touching anything: a changed file means the live schema and the
        # repository disagree, and re-running history is never what someone wants.
        view_files = [f for f in files if f.defines_only_views]
        history = [f for f in files if not f.defines_only_views]
        for f in history:
            if f.name in applied and applied[f.name] != f.checksum:
                raise MigrationError(
                    f"applied migration {store}/{f.name} has changed since it was applied "
                    "(checksum differs); restore it and add a new migration file instead"
                )
        for f in history:
            if f.name in applied:
                report.already_applied.append(f.name)
                continue
            if not f.runs_on(engine):
                report.skipped_other_engine.append(f.name)
                continue
            sql = render(f.text, engine, variables)
            _apply(conn, engine, store, f, sql)
            report.applied.append(f.name)
            if on_apply:
                on_apply(f"{store}/{f.name}")
        _sync_view_files(conn, engine, store, view_files, variables, report, on_apply)
    for names in (report.applied, report.skipped_other_engine, report.already_applied):
        names.sort()  # in file order, as before view files were created last
    return report


def _sync_view_files(
    conn: psycopg.Connection[dict],  # type: ignore[type-arg]
    engine: Engine,
    store: str,
    files: list[MigrationFile],
    variables: Mapping[str, str],
    report: MigrationReport,
    on_apply: Callable[[str], None] | None,
) -> None:
    ours = [f for f in files if f.runs_on(engine)]
    report.skipped_other_engine.extend(f.name for f in files if not f.runs_on(engine))
    definitions = [
        Definition(name, f.name, sql, f.engine_only is None)
        for f in ours
        for name, sql in view_statements(split_statements(render(f.text, engine, variables))) or []
    ]

    def run(filename: str, sql: str) -> None:
        try:
            conn.execute(sql.encode())
        except psycopg.Error as err:
            raise MigrationError(f"{store}/{filename or 'views'} failed: {str(err).strip()}") from None

    created = {v.filename for v in sync_views(conn, engine, store, plan(definitions, engine), run).created}
    for f in ours:
        if f.name in created:
            report.applied.append(f.name)
            if on_apply:
                on_apply(f"{store}/{f.name}")
        else:
            report.already_applied.append(f.name)


def _apply(conn: psycopg.Connection[dict], engine: Engine, store: str, f: MigrationFile, sql: str) -> None:  # type: ignore[type-arg]
    record = (
        "INSERT INTO mca_migrations (store, filename, checksum, engine, applied_at) "
        "VALUES (%s, %s, %s, %s, now())"
    )
    try:
        if engine is Engine.POSTGRES:
            # DDL is transactional on PostgreSQL: the file and its ledger row land together.
            with conn.transaction():
                conn.execute(sql.encode())
                conn.execute(record, (store, f.name, f.checksum, engine.value))
        else:
            # RisingWave has no transactional DDL; statements go one by one.
            for statement in split_statements(sql):
                conn.execute(statement.encode())
            conn.execute(record, (store, f.name, f.checksum, engine.value))
    except psycopg.Error as err:
        raise MigrationError(f"{store}/{f.name} failed: {str(err).strip()}") from None


def split_statements(sql: str) -> list[str]:
    """Split on semicolons outside quotes and comments (our files hold no dollar quoting)."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(sql):
        ch = sql[i]
        if quote:
            current.append(ch)
            if ch == quote:
                quote = None
        elif ch in ("'", '"'):
            quote = ch
            current.append(ch)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end == -1 else end
            continue
        elif ch == ";":
            text = "".join(current).strip()
            if text:
                statements.append(text)
            current = []
        else:
            current.append(ch)
        i += 1
    tail = "".join(current).strip()
    if tail:
        statements.append(tail)
    return statements


def migrate(
    settings: Settings,
    state_url: str,
    ops_url: str,
    *,
    on_apply: Callable[[str], None] | None = None,
) -> dict[str, MigrationReport]:
    variables = template_variables(settings)
    sql_dir = Path(settings.stores.sql_dir)
    return {
        "state": migrate_store(
            state_url, "state", migration_files(sql_dir, "state"), variables, on_apply=on_apply
        ),
        "ops": migrate_store(
            ops_url,
            "ops",
            migration_files(sql_dir, "ops"),
            variables,
            require_postgres=True,
            on_apply=on_apply,
        ),
    }
