"""Every state file must be SQL that RisingWave accepts; portable files must also run on PostgreSQL.

sqlglot's RisingWave dialect is the stand-in for a RisingWave server we cannot start here:
a file it can only keep as an opaque `Command` uses syntax it does not know, which we allow
only in RisingWave-only files (CREATE SUBSCRIPTION).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from mca.db import Engine
from mca.migrate import migration_files, render
from mca.settings import PROJECT_ROOT

STATE_FILES = migration_files(PROJECT_ROOT / "sql", "state")
VARIABLES = {"kafka_topic": "mca.events", "kafka_brokers": "redpanda:9092"}


def test_there_are_state_files_for_both_engines() -> None:
    assert {f.engine_only for f in STATE_FILES} == {None, Engine.POSTGRES, Engine.RISINGWAVE}


RISINGWAVE_FILES = [f for f in STATE_FILES if f.runs_on(Engine.RISINGWAVE)]


@pytest.mark.parametrize("migration", RISINGWAVE_FILES, ids=lambda f: f.name)
def test_state_file_parses_as_risingwave(migration) -> None:  # type: ignore[no-untyped-def]
    sql = render(migration.text, Engine.RISINGWAVE, VARIABLES)
    statements = sqlglot.parse(sql, read="risingwave", error_level=sqlglot.ErrorLevel.RAISE)
    assert statements, "file holds no statement"
    for statement in statements:
        assert statement is not None
        if isinstance(statement, exp.Command):
            assert migration.engine_only is Engine.RISINGWAVE, (
                f"unparsed syntax in portable file: {statement}"
            )
            assert "SUBSCRIPTION" in statement.sql().upper()


@pytest.mark.parametrize("migration", STATE_FILES, ids=lambda f: f.name)
def test_every_file_opens_with_what_one_row_is(migration) -> None:  # type: ignore[no-untyped-def]
    first = migration.text.lstrip().splitlines()[0]
    assert first.startswith("-- One row") or first.startswith("-- No rows"), first


def test_portable_views_are_materialized_views_on_risingwave() -> None:
    for migration in STATE_FILES:
        if migration.engine_only is None and "VIEW" in migration.text.upper():
            rendered = render(migration.text, Engine.RISINGWAVE, VARIABLES)
            assert "CREATE MATERIALIZED VIEW" in rendered
            assert "CREATE MATERIALIZED VIEW" not in render(migration.text, Engine.POSTGRES, VARIABLES)


def test_ops_files_are_postgres_sql() -> None:
    for migration in migration_files(PROJECT_ROOT / "sql", "ops"):
        sqlglot.parse(migration.text, read="postgres", error_level=sqlglot.ErrorLevel.RAISE)


def test_trigger_queries_parse() -> None:
    for path in sorted(Path(PROJECT_ROOT / "sql" / "triggers").glob("*.sql")):
        sqlglot.parse(path.read_text().replace("%(", "(").replace(")s", ")"), read="postgres")
