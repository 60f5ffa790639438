"""Ingest test helpers: the app over httpx with its lifespan entered, `mca serve` as a real process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from ingest.web import extension
from mca.app import create_app
from mca.db import Stores
from mca.net import PortTaken, listens, on_free_port
from mca.settings import Settings
from mca.testing.waiting import wait_until

# librdkafka's default 5-minute rebalance timeout makes a broker that waits for every member
# hold a join that long; short ones let a test's consumer group form in seconds.
FAST_GROUP = {"session.timeout.ms": 3000, "max.poll.interval.ms": 3000, "heartbeat.interval.ms": 500}


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mca.test") as client:
            yield client


def ingest_app(settings: Settings, stores: Stores) -> FastAPI:
    return create_app(settings, stores, extensions=[extension(settings, stores)])


def mca_env(db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCA_")}
    env.update({"MCA_STATE_URL": db_url, "MCA_OPS_URL": db_url, "HF_HUB_OFFLINE": "1", **extra})
    return env


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
    return on_free_port(lambda port: _serve_on(port, db_url, timeout_s, host, env))


def _serve_on(port: int, db_url: str, timeout_s: float, host: str, env: dict[str, str]) -> Served:
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

    def ready_or_exited() -> bool:
        if process.poll() is not None:
            return True
        try:
            # Another worker's server may hold the port: the answer counts only if ours listens.
            return httpx.get(f"{base}/readyz", timeout=1).status_code == 200 and listens(process.pid, port)
        except httpx.TransportError:
            return False

    try:
        wait_until(ready_or_exited, f"mca serve ready on port {port}", timeout_s, every_s=0.1)
    except AssertionError:
        stop_process(process)
        pytest.fail(f"mca serve did not become ready within {timeout_s}s")
    if process.poll() is not None:
        if "address already in use" in log.read_text(errors="replace").lower():
            raise PortTaken(f"mca serve could not bind {port}")
        pytest.fail(f"mca serve exited before it was ready (exit {process.poll()})")
    return Served(base, db_url, process, log)


def stop_process(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    return int(process.returncode)
