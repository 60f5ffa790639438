"""Ingest fixtures: the app over httpx (lifespan entered), and a real Kafka-protocol broker.

The broker is tansu (tests/kafka_broker.py), started fresh for each test that asks for one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from ingest.web import extension
from mca.app import create_app
from mca.db import Stores
from mca.net import free_port
from mca.settings import Settings
from tests.kafka_broker import Broker, running_broker

# librdkafka's default 5-minute rebalance timeout makes a broker that waits for every member
# hold a join that long; short ones let a test's consumer group form in seconds.
FAST_GROUP = {"session.timeout.ms": 3000, "max.poll.interval.ms": 3000, "heartbeat.interval.ms": 500}


@pytest.fixture
def broker() -> Iterator[Broker]:
    """A fresh broker per test (in-memory: nothing leaks between tests)."""
    with running_broker() as b:
        yield b


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mca.test") as client:
            yield client


def ingest_app(settings: Settings, stores: Stores) -> FastAPI:
    return create_app(settings, stores, extensions=[extension(settings, stores)])


@pytest.fixture
async def client(settings: Settings, stores: Stores) -> AsyncIterator[httpx.AsyncClient]:
    """The app (ingest only, open mode, direct transport) on this test's fresh database."""
    async with running(ingest_app(settings, stores)) as c:
        yield c


@pytest.fixture
def make_client(stores: Stores, tmp_path: Path) -> Callable[..., Any]:
    """``async with make_client(api_keys=..., ...) as client`` for other settings."""

    def make(**overrides: Any) -> Any:
        s = Settings(state_url=stores.state_url, ops_url=stores.ops_url, data_dir=tmp_path / "d", **overrides)
        return running(ingest_app(s, stores))

    return make


@pytest.fixture
def count_events(db_url: str) -> Callable[..., int]:
    def count(where: str = "true", params: tuple[Any, ...] = ()) -> int:
        with psycopg.connect(db_url) as conn:
            row = conn.execute(f"SELECT count(*) FROM events WHERE {where}", params).fetchone()  # type: ignore[arg-type]
            assert row is not None
            return int(row[0])

    return count


@pytest.fixture
def fetch_events(db_url: str) -> Callable[[], list[dict[str, Any]]]:
    def fetch() -> list[dict[str, Any]]:
        with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
            return conn.execute("SELECT * FROM events ORDER BY seq").fetchall()

    return fetch


def mca_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCA_")}
    env.update({"MCA_STATE_URL": db_url, "MCA_OPS_URL": db_url, "HF_HUB_OFFLINE": "1", **extra})
    return env


@pytest.fixture(scope="module")
def module_db_url(pg_server: Any, template_url: str) -> Iterator[str]:
    """A fresh migrated database shared by one module (for a server process it serves)."""
    import uuid

    name = f"m_{uuid.uuid4().hex[:12]}"
    admin = pg_server.url("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "mca_template"')  # type: ignore[arg-type]
    yield pg_server.url(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[arg-type]


@dataclass
class Served:
    base_url: str
    db_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def serve(db_url: str, timeout_s: float = 60.0, host: str = "127.0.0.1", **env: str) -> Served:
    """`mca serve` as a real uvicorn process on a free port, once /readyz answers on loopback."""
    port = free_port()
    mca = Path(sys.executable).parent / "mca"
    log = Path(tempfile.mkstemp(prefix="mca-serve-", suffix=".log")[1])
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [str(mca), "serve", "--host", host, "--port", str(port)],
            env=mca_env(db_url, **env),
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return Served(base, db_url, process, log)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            stop_process(process)
            pytest.fail(f"mca serve did not become ready within {timeout_s}s (exit {process.poll()})")
        time.sleep(0.1)  # bounded readiness poll


def stop_process(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return int(process.returncode)


@pytest.fixture(scope="module")
def served(module_db_url: str) -> Iterator[Served]:
    s = serve(module_db_url)
    yield s
    stop_process(s.process)
