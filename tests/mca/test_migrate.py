"""The migration runner against the real embedded server: order, checksums, dialects, failures."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mca.db import DatabaseUnreachable, Engine, connect, engine_of_version
from mca.embedded import EmbeddedPostgres
from mca.errors import MigrationError
from mca.migrate import migrate, migrate_store, migration_files, render, split_statements
from mca.settings import PROJECT_ROOT, Settings


@pytest.fixture
def empty_db(pg_server: EmbeddedPostgres) -> Iterator[str]:
    name = f"m_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    yield url
    with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def ledger(url: str) -> list[tuple[str, str]]:
    with connect(url) as conn:
        return [
            (r["store"], r["filename"])
            for r in conn.execute("SELECT store, filename FROM mca_migrations ORDER BY store, filename")
        ]


def test_applies_everything_once_in_order(empty_db: str, tmp_path: Path) -> None:
    settings = Settings(state_url=empty_db, ops_url=empty_db, data_dir=tmp_path)
    applied: list[str] = []
    first = migrate(settings, empty_db, empty_db, on_apply=applied.append)
    state_names = [f.name for f in migration_files(PROJECT_ROOT / "sql", "state")]
    expected_state = [n for n in state_names if "risingwave" not in n]
    assert first["state"].applied == expected_state
    assert first["state"].skipped_other_engine == [n for n in state_names if "risingwave" in n]
    # Files that define only views come after the others (mca/views.py), in dependency order.
    tables = {f.name for f in migration_files(PROJECT_ROOT / "sql", "state") if not f.defines_only_views}
    history = [n for n in expected_state if n in tables]
    assert applied[: len(history)] == [f"state/{n}" for n in history]
    assert sorted(applied[: len(expected_state)]) == [f"state/{n}" for n in expected_state]
    second = migrate(settings, empty_db, empty_db)
    assert second["state"].applied == [] and second["ops"].applied == []
    assert second["state"].already_applied == expected_state
    with connect(empty_db) as conn:
        kinds = {
            r["table_name"]: r["table_type"]
            for r in conn.execute(
                "SELECT table_name, table_type FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert kinds["unified_context"] == "VIEW" and kinds["events"] == "BASE TABLE"


def copy_sql(tmp_path: Path) -> Path:
    sql_dir = tmp_path / "sql"
    (sql_dir / "state").mkdir(parents=True)
    (sql_dir / "ops").mkdir()
    return sql_dir


def test_refuses_when_an_applied_file_changed(empty_db: str, tmp_path: Path) -> None:
    sql_dir = copy_sql(tmp_path)
    first = sql_dir / "state" / "001_a.sql"
    first.write_text("-- One row per thing.\nCREATE TABLE a (id int);\n")
    migrate_store(empty_db, "state", migration_files(sql_dir, "state"), {})
    first.write_text("-- One row per thing.\nCREATE TABLE a (id bigint);\n")
    (sql_dir / "state" / "002_b.sql").write_text("-- One row per b.\nCREATE TABLE b (id int);\n")
    with pytest.raises(MigrationError, match=r"state/001_a\.sql has changed"):
        migrate_store(empty_db, "state", migration_files(sql_dir, "state"), {})
    # Refused before anything ran: 002 was not applied.
    assert ledger(empty_db) == [("state", "001_a.sql")]


def test_failed_file_leaves_nothing_behind(empty_db: str, tmp_path: Path) -> None:
    sql_dir = copy_sql(tmp_path)
    (sql_dir / "state" / "001_ok.sql").write_text("-- One row per ok.\nCREATE TABLE ok (id int);\n")
    (sql_dir / "state" / "002_bad.sql").write_text(
        "-- One row per half.\nCREATE TABLE half (id int);\nCREATE TABLE broken (id nosuchtype);\n"
    )
    with pytest.raises(MigrationError, match=r"002_bad\.sql failed"):
        migrate_store(empty_db, "state", migration_files(sql_dir, "state"), {})
    assert ledger(empty_db) == [("state", "001_ok.sql")]
    with connect(empty_db) as conn:
        assert conn.execute("SELECT to_regclass('half') AS t").fetchone() == {"t": None}


def test_render_rewrites_dialect_and_placeholders() -> None:
    sql = "CREATE MATERIALIZED VIEW v AS SELECT 1; -- topic {{kafka_topic}}"
    assert render(sql, Engine.POSTGRES, {"kafka_topic": "t"}) == "CREATE VIEW v AS SELECT 1; -- topic t"
    assert render(sql, Engine.RISINGWAVE, {"kafka_topic": "t"}).startswith("CREATE MATERIALIZED VIEW")
    with pytest.raises(MigrationError, match="unknown placeholder"):
        render("SELECT '{{nope}}'", Engine.POSTGRES, {})


def test_split_statements_respects_quotes_and_comments() -> None:
    sql = "-- a; comment\nCREATE TABLE t (x text DEFAULT ';');\nINSERT INTO t VALUES ('a;b');\n"
    assert split_statements(sql) == ["CREATE TABLE t (x text DEFAULT ';')", "INSERT INTO t VALUES ('a;b')"]


def test_engine_is_detected_from_the_server_version() -> None:
    assert engine_of_version("PostgreSQL 18.6 on x86_64-pc-linux-gnu") is Engine.POSTGRES
    rw = "PostgreSQL 13.14.0-RisingWave-2.6.0 (0a1b2c3)"
    assert engine_of_version(rw) is Engine.RISINGWAVE
    with pytest.raises(DatabaseUnreachable, match="unknown engine"):
        engine_of_version("MySQL 8.0")


def test_unreachable_url_names_the_url_with_password_masked() -> None:
    with pytest.raises(DatabaseUnreachable) as info:
        connect("postgresql://bob:hunter2@127.0.0.1:1/db")
    message = str(info.value)
    assert "postgresql://bob:***@127.0.0.1:1/db" in message
    assert "hunter2" not in message
