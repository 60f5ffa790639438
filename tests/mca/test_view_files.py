"""View files (mca/views.py): re-created from their current text when it changes, readers too.

On PostgreSQL against the real embedded server; on RisingWave against the wire-protocol
stand-in, which refuses to drop a materialized view another one reads, as RisingWave does.
Also: a database made by the runner before view files existed (the files of commit
`BEFORE_VIEW_FILES`, applied once each) migrates to the current files.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from mca.db import Engine, connect
from mca.embedded import EmbeddedPostgres
from mca.errors import MigrationError
from mca.migrate import MigrationFile, _apply, migrate, migrate_store, migration_files, render
from mca.settings import PROJECT_ROOT, Settings
from mca.testing import event_row, identify
from mca.testing.risingwave import FakeRisingWave
from mca.testing.rows import INSERT_EVENT

# The last commit whose runner applied every file once (sql/state 100 and 162-165 still there).
BEFORE_VIEW_FILES = "a2284bc"
USER_STATS = "040_user_stats.sql"


@pytest.fixture
def empty_db(pg_server: EmbeddedPostgres) -> Iterator[str]:
    name = f"v_{uuid.uuid4().hex[:10]}"
    admin = pg_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    url = pg_server.url(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION vector")
    yield url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')  # type: ignore[arg-type]


def sql_copy(tmp_path: Path) -> Path:
    target = tmp_path / "sql"
    shutil.copytree(PROJECT_ROOT / "sql", target)
    return target


def add_column_to_user_stats(sql_dir: Path) -> None:
    path = sql_dir / "state" / USER_STATS
    text = path.read_text()
    assert "    life.last_seen,\n" in text
    path.write_text(
        text.replace("    life.last_seen,\n", "    life.last_seen,\n    life.events_total * 2 AS probe,\n", 1)
    )


def views_created(url: str) -> dict[str, Any]:
    with connect(url) as conn:
        return {r["name"]: r["created_at"] for r in conn.execute("SELECT name, created_at FROM mca_views")}


def columns(url: str, relation: str) -> list[str]:
    with connect(url) as conn:
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0 "
            "ORDER BY attnum",
            (relation,),
        )
        return [r["attname"] for r in rows]


def test_a_changed_view_is_recreated_with_its_readers_only(empty_db: str, tmp_path: Path) -> None:
    sql_dir = sql_copy(tmp_path)
    settings = Settings(state_url=empty_db, ops_url=empty_db, data_dir=tmp_path, sql_dir=sql_dir)
    migrate(settings, empty_db, empty_db)
    before = views_created(empty_db)
    add_column_to_user_stats(sql_dir)
    report = migrate(settings, empty_db, empty_db)["state"]
    assert report.applied == [USER_STATS, "060_unified_context.sql"]
    after = views_created(empty_db)
    assert set(after) == set(before)
    recreated = {name for name in after if after[name] != before[name]}
    # The portable definitions are the *_recomputed twins on PostgreSQL; the maintained
    # user_stats (file 103) did not change and neither did anything that reads it.
    assert recreated == {"user_stats_recomputed", "unified_context_recomputed"}
    assert "probe" in columns(empty_db, "user_stats_recomputed")
    assert "probe" not in columns(empty_db, "user_stats")
    again = migrate(settings, empty_db, empty_db)["state"]
    assert again.applied == [] and views_created(empty_db) == after


def test_a_removed_view_file_drops_its_views_and_history_stays_append_only(
    empty_db: str, tmp_path: Path
) -> None:
    sql_dir = sql_copy(tmp_path)
    probe = sql_dir / "state" / "990_probe.sql"
    probe.write_text(
        "-- One row per user: a probe.\nCREATE MATERIALIZED VIEW probe AS SELECT user_id FROM user_stats;\n"
    )
    settings = Settings(state_url=empty_db, ops_url=empty_db, data_dir=tmp_path, sql_dir=sql_dir)
    migrate(settings, empty_db, empty_db)
    assert "probe" in views_created(empty_db)
    probe.unlink()
    migrate(settings, empty_db, empty_db)
    assert "probe" not in views_created(empty_db)
    with connect(empty_db) as conn:
        assert conn.execute("SELECT to_regclass('probe') AS r").fetchone() == {"r": None}
    table_file = sql_dir / "state" / "070_assets.sql"
    table_file.write_text(table_file.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match=r"070_assets\.sql has changed"):
        migrate(settings, empty_db, empty_db)


def old_files(tmp_path: Path) -> list[MigrationFile]:
    """sql/state as it was at `BEFORE_VIEW_FILES`, read from git."""
    folder = tmp_path / "old-state"
    folder.mkdir()
    listing = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "ls-tree", "--name-only", f"{BEFORE_VIEW_FILES}:sql/state"],
        check=True, capture_output=True, text=True,
    ).stdout.split()  # fmt: skip
    for name in listing:
        text = subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), "show", f"{BEFORE_VIEW_FILES}:sql/state/{name}"],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        (folder / name).write_text(text)
    return [MigrationFile("state", p) for p in sorted(folder.glob("*.sql"))]


def test_a_database_made_by_the_old_runner_migrates(empty_db: str, tmp_path: Path) -> None:
    files = old_files(tmp_path)
    assert "163_user_stats_contacts_postgres.sql" in [f.name for f in files]
    with connect(empty_db, autocommit=True) as conn:
        conn.execute("CREATE TABLE mca_migrations (store varchar NOT NULL, filename varchar NOT NULL, "
                     "checksum varchar NOT NULL, engine varchar NOT NULL, applied_at timestamptz NOT NULL, "
                     "PRIMARY KEY (store, filename))")  # fmt: skip
        for f in files:  # what the old runner did: every file once, in order
            if f.runs_on(Engine.POSTGRES):
                _apply(conn, Engine.POSTGRES, "state", f, render(f.text, Engine.POSTGRES, {}))
    identify(empty_db, {"c1": {"phone": "+15550100", "first_name": "Ana"}})
    now = datetime.now(UTC)
    with connect(empty_db, autocommit=True) as conn:
        conn.execute(INSERT_EVENT, event_row("e1", "c1", "purchase", now - timedelta(hours=2), value=30))
        conn.execute(INSERT_EVENT, event_row("e2", "c1", "offer_sent", now - timedelta(hours=1)))
    shape_before = {
        v: columns(empty_db, v) for v in ("user_stats", "unified_context", "unified_context_recomputed")
    }
    settings = Settings(state_url=empty_db, ops_url=empty_db, data_dir=tmp_path)
    report = migrate(settings, empty_db, empty_db)["state"]
    assert "104_events_user_index_postgres.sql" in report.applied
    shape_after = {v: columns(empty_db, v) for v in shape_before}
    assert shape_after == shape_before
    with connect(empty_db) as conn:
        for view in ("user_stats", "unified_context"):
            live = conn.execute(f"SELECT * FROM {view} ORDER BY user_id").fetchall()  # type: ignore[arg-type]
            twin = conn.execute(f"SELECT * FROM {view}_recomputed ORDER BY user_id").fetchall()  # type: ignore[arg-type]
            assert live == twin and live[0]["offers_outstanding"] == 1, view
    assert migrate(settings, empty_db, empty_db)["state"].applied == []


@pytest.fixture
def risingwave() -> Iterator[FakeRisingWave]:
    with FakeRisingWave().serving() as server:
        yield server


def test_on_risingwave_readers_are_dropped_first_and_created_after(
    risingwave: FakeRisingWave, tmp_path: Path
) -> None:
    sql_dir = sql_copy(tmp_path)
    variables = {"kafka_topic": "t", "kafka_brokers": "b:9092"}
    migrate_store(risingwave.url, "state", migration_files(sql_dir, "state"), variables)
    views_before = set(risingwave.views)
    add_column_to_user_stats(sql_dir)
    sent_before = len(risingwave.statements)
    report = migrate_store(risingwave.url, "state", migration_files(sql_dir, "state"), variables)
    assert report.applied == [USER_STATS, "060_unified_context.sql"]
    ddl = [
        " ".join(s.split()[:4])
        for s in risingwave.statements[sent_before:]
        if s.upper().startswith(("CREATE M", "DROP M"))
    ]
    assert ddl == [
        "DROP MATERIALIZED VIEW unified_context",
        "DROP MATERIALIZED VIEW user_stats",
        "CREATE MATERIALIZED VIEW user_stats",
        "CREATE MATERIALIZED VIEW unified_context",
    ]
    assert set(risingwave.views) == views_before
    assert "probe" in next(
        s for s in risingwave.statements[sent_before:] if s.startswith("CREATE MATERIALIZED VIEW user_stats")
    )


def test_the_fake_risingwave_refuses_to_drop_a_view_that_is_read(risingwave: FakeRisingWave) -> None:
    with connect(risingwave.url, autocommit=True) as conn:
        conn.prepare_threshold = None
        conn.execute("CREATE MATERIALIZED VIEW a AS SELECT user_id FROM events")
        conn.execute("CREATE MATERIALIZED VIEW b AS SELECT user_id FROM a")
        with pytest.raises(psycopg.Error, match="read by b"):
            conn.execute("DROP MATERIALIZED VIEW a")
        conn.execute("DROP MATERIALIZED VIEW b")
        conn.execute("DROP MATERIALIZED VIEW a")
    assert risingwave.views == {}
