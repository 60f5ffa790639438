"""Shared fixtures: one real embedded PostgreSQL per test session, a fresh database per test.

The session migrates a template database once; each test gets `CREATE DATABASE … TEMPLATE`,
which copies the migrated schema in tens of milliseconds, so tests never share rows.

`embedder` is the hash embedder (vectors without meaning, no model load); a test whose
outcome depends on what a text means is marked ``@pytest.mark.real_model`` and gets MiniLM.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from mca.db import Stores
from mca.embedded import EmbeddedPostgres
from mca.migrate import migrate
from mca.settings import Settings
from mca.testing.databases import DatabasePool, make_throwaway
from mca.testing.tmp import remove_own_basetemp, use_own_basetemp
from mca.testing.triggers import triggers_without_experiments
from state.embedding import Embedder
from state.testing import HashEmbedder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

TEMPLATE = "mca_template"
HASH_EMBEDDER = HashEmbedder()


@pytest.hookimpl(tryfirst=True)  # before pytest's own tmp_path set-up reads --basetemp
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "real_model: the test needs the real embedding model (meaning)")
    use_own_basetemp(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    remove_own_basetemp(config)


def _url(server: EmbeddedPostgres, database: str) -> str:
    return server.url(database)


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("embedded-pg"))
    server.up()
    make_throwaway(server.url("postgres"))
    yield server
    server.down()


@pytest.fixture(scope="session")
def template_url(pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory) -> str:
    with psycopg.connect(_url(pg_server, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE}"')
    url = _url(pg_server, TEMPLATE)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    settings = Settings(state_url=url, ops_url=url, data_dir=tmp_path_factory.mktemp("mca-data"))
    migrate(settings, url, url)
    return url


@pytest.fixture(scope="session")
def databases(pg_server: EmbeddedPostgres, template_url: str) -> Iterator[DatabasePool]:
    """Copies of the template, made ahead while earlier tests run."""
    pool = DatabasePool(_url(pg_server, "postgres"), pg_server.url, TEMPLATE)
    yield pool
    pool.close()


@pytest.fixture
def db_url(databases: DatabasePool) -> Iterator[str]:
    """A fresh, fully migrated database for one test."""
    url = databases.take()
    yield url
    databases.give_back(url)


@pytest.fixture
def stores(db_url: str) -> Stores:
    return Stores(state_url=db_url, ops_url=db_url)


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    """Settings pointing both stores at this test's fresh database."""
    return Settings(state_url=db_url, ops_url=db_url, data_dir=tmp_path / "mca-data")


@pytest.fixture
def embedder(request: pytest.FixtureRequest) -> Embedder:
    """The hash embedder, or the process's real model for a test marked ``real_model``."""
    if request.node.get_closest_marker("real_model") is None:
        return HASH_EMBEDDER
    from state.embedding import get_embedder

    return get_embedder()


@pytest.fixture
def triggers_file(tmp_path: Path) -> Path:
    """The shipped triggers file with experiments off (mca.testing.triggers): nobody held out."""
    return triggers_without_experiments(tmp_path / "config")
