"""MCP tool call round trip: the official client over the in-process transport and over
streamable HTTP (the service app's /mcp route, bearer token, served by uvicorn in a subprocess).

    .venv/bin/python bench/bench_mcp.py                 # 500 calls per tool and transport
    .venv/bin/python bench/bench_mcp.py --calls 5000

Tools measured: get_user_context (a read) and send_coupon (guard + ledger + outbox, allowed).
Runs on its own embedded server (.mca-bench/), policy loosened so every send is allowed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import RequestParamsMeta

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_guard import bench_policy, percentile, seed
from bench_seed import bench_database

from mca.db import Stores
from mca.net import free_port
from mca.settings import PROJECT_ROOT, Settings
from mcp_tools.server import build_server

TOKEN = "bench-token"
SERVE = """
import uvicorn
from mca.app import create_app
from mca.db import Stores
from mca.settings import Settings
from mcp_tools import web
settings = Settings()
stores = Stores(settings.stores.state_url, settings.stores.ops_url)
app = create_app(settings, stores, extensions=[web.extension(settings, stores)])
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning")
"""


async def measure(client: Client, n: int, users: int, tag: str) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"get_user_context": [], "send_coupon": []}
    for i in range(n):
        user = f"user-{i % users}"
        for tool, args in (
            ("get_user_context", {"user_id": user}),
            ("send_coupon", {"user_id": user, "asset_id": "C5", "reason": "bench"}),
        ):
            started = time.perf_counter()
            result = await client.call_tool(
                tool,
                args,
                meta=cast(RequestParamsMeta, {"mca.decision_id": f"{tag}-{i}", "mca.trigger": "default"}),
            )
            out[tool].append((time.perf_counter() - started) * 1000)
            assert not result.is_error, result.structured_content
    return out


def report(transport: str, samples: dict[str, list[float]]) -> None:
    for tool, values in samples.items():
        print(
            f"{transport:<8} {tool:<17} n={len(values):>5}  p50={statistics.median(values):6.2f} ms  "
            f"p99={percentile(values, 0.99):6.2f} ms",
            flush=True,
        )


def _wait_http(url: str, proc: subprocess.Popen[Any]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the service exited")
        try:
            httpx.get(url.replace("/mcp", "/healthz"), timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("the service did not start")


async def run(args: argparse.Namespace) -> None:
    url = bench_database("mcp_bench", fresh=True)
    seed(url, args.users)
    with tempfile.TemporaryDirectory() as tmp:
        policy = bench_policy(Path(tmp))
        settings = Settings(state_url=url, ops_url=url, policy_file=policy)
        async with Client(build_server(settings, Stores(url, url))) as client:
            await measure(client, 50, args.users, "warm-mem")
            report("memory", await measure(client, args.calls, args.users, "mem"))
        port = free_port()
        env = {
            **os.environ,
            "MCA_STATE_URL": url,
            "MCA_OPS_URL": url,
            "MCA_POLICY_FILE": str(policy),
            "MCA_MCP_TOKENS": json.dumps({TOKEN: "agent"}),
            "PYTHONPATH": str(PROJECT_ROOT),
        }
        proc = subprocess.Popen([sys.executable, "-c", SERVE.format(port=port)], env=env, cwd=PROJECT_ROOT)
        try:
            endpoint = f"http://127.0.0.1:{port}/mcp"
            _wait_http(endpoint, proc)
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
            async with Client(streamable_http_client(endpoint, http_client=http)) as client:
                await measure(client, 50, args.users, "warm-http")
                report("http", await measure(client, args.calls, args.users, "http"))
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--users", type=int, default=1000)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
