"""The RisingWave path of the migration runner, against a wire-protocol stand-in (mca/testing/risingwave.py).

What is checked is what mca sends: the engine is read from SELECT version(), RisingWave-only
files run and PostgreSQL-only ones do not, materialized views stay materialized, statements
go one at a time, placeholders are filled, and the ops schema is refused on RisingWave.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mca.db import Engine, connect, detect_engine
from mca.errors import MigrationError
from mca.migrate import migrate, migrate_store, migration_files, template_variables
from mca.settings import PROJECT_ROOT, Settings
from mca.testing.risingwave import FakeRisingWave


@pytest.fixture
def risingwave() -> Iterator[FakeRisingWave]:
    with FakeRisingWave().serving() as server:
        yield server


def test_engine_detected_from_server(risingwave: FakeRisingWave) -> None:
    with connect(risingwave.url, autocommit=True) as conn:
        assert detect_engine(conn) is Engine.RISINGWAVE


def test_state_files_on_risingwave(risingwave: FakeRisingWave, tmp_path: Path) -> None:
    settings = Settings(kafka_topic="shop.events", kafka_brokers="redpanda:9092", data_dir=tmp_path)
    files = migration_files(PROJECT_ROOT / "sql", "state")
    report = migrate_store(risingwave.url, "state", files, template_variables(settings))
    assert "011_events_risingwave.sql" in report.applied
    assert "080_events_subscription_risingwave.sql" in report.applied
    postgres_only = [f.name for f in files if f.engine_only is Engine.POSTGRES]
    assert "010_events_postgres.sql" in postgres_only
    assert report.skipped_other_engine == postgres_only
    sent = "\n".join(risingwave.statements)
    assert "CREATE MATERIALIZED VIEW unified_context" in sent
    assert "topic = 'shop.events'" in sent and "properties.bootstrap.server = 'redpanda:9092'" in sent
    assert "{{" not in sent
    assert "USING hnsw" not in sent and "pg_current_xact_id" not in sent
    assert "CREATE SUBSCRIPTION events_changes FROM events" in sent
    # Views are created after what they read (a changed one: tests/mca/test_view_files.py); and
    # the driver never sends DEALLOCATE (the fake refuses it, as RisingWave does in simple query mode).
    assert sent.index("CREATE MATERIALIZED VIEW user_contacts") < sent.index(
        "CREATE MATERIALIZED VIEW user_stats"
    )
    assert "DEALLOCATE" not in sent.upper()
    # A second run finds every file in the ledger and sends no DDL.
    before = len(risingwave.statements)
    again = migrate_store(risingwave.url, "state", files, template_variables(settings))
    assert again.applied == []
    assert not any(s.upper().startswith("CREATE M") for s in risingwave.statements[before:])


def test_ops_schema_is_refused_on_risingwave(risingwave: FakeRisingWave, db_url: str, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(MigrationError, match="ops store must be PostgreSQL"):
        migrate(settings, db_url, risingwave.url)
    assert not any(r["store"] == "ops" for r in risingwave.ledger)
