"""Peak resident memory of `mca demo` (the Python process with the embedding model loaded),
plus the embedded PostgreSQL server's memory while it runs; and of `mca serve` after one
asset search over MCP (the query embedded by the serving process).

    .venv/bin/python bench/bench_demo_memory.py            # a fresh data folder: first-run demo
    .venv/bin/python bench/bench_demo_memory.py --again    # also a second, warm run
    .venv/bin/python bench/bench_demo_memory.py --world-only   # the state-engine demo alone
    .venv/bin/python bench/bench_demo_memory.py --serve-only   # `mca serve` + one search

The demo runs as a child process in its own data folder under .mca-bench/ and is stopped after.
`mca serve` runs against a database on the benchmark server, which is not counted: the
figure is the serving process tree's peak (the kernel's VmHWM, plus any children).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import httpx2
import psutil
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_seed import bench_database
from report import Comparison, print_table, record

from mca.net import free_port
from mca.settings import PROJECT_ROOT

BENCH_DIR = Path(os.environ.get("MCA_BENCH_DIR", ".mca-bench"))
MCA = str(Path(sys.executable).with_name("mca"))
TOKEN = "bench-memory"
SERVE_TARGET_MIB = 300
MIB = 1024 * 1024


def tree_rss(root: psutil.Process) -> int:
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total


def server_rss(data_dir: Path) -> int:
    """Everything the embedded server runs (postmaster and backends) for this data folder."""
    pid_file = data_dir / "pg" / "postmaster.pid"
    if not pid_file.exists():
        return 0
    try:
        return tree_rss(psutil.Process(int(pid_file.read_text().split()[0])))
    except (psutil.NoSuchProcess, ValueError):
        return 0


def run_demo(env: dict[str, str], data_dir: Path, extra: list[str]) -> tuple[float, int, int, int]:
    started = time.perf_counter()
    child = subprocess.Popen(
        [MCA, "demo", *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    proc = psutil.Process(child.pid)
    peak_tree = peak_server = 0
    while child.poll() is None:
        try:
            peak_tree = max(peak_tree, tree_rss(proc))
        except psutil.NoSuchProcess:
            break
        peak_server = max(peak_server, server_rss(data_dir))
        time.sleep(0.05)
    _, stderr = child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"mca demo failed ({child.returncode}): {stderr.decode()[-2000:]}")
    # ru_maxrss of waited-for children is the kernel's own peak (KiB on Linux): no sampling gaps.
    kernel_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return time.perf_counter() - started, kernel_peak, peak_tree, peak_server


def peak_rss(pid: int) -> int:
    """The kernel's high-water mark of one process's resident set (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def load_catalogue(url: str) -> None:
    from mca.db import connect
    from state.catalogue import load_assets
    from state.embedding import get_embedder

    with connect(url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM assets LIMIT 1").fetchone() is None:
            catalogue = PROJECT_ROOT / "demo" / "seed" / "catalogue.json"
            load_assets(conn, catalogue, get_embedder(), progress=False)


async def search_once(endpoint: str) -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    async with Client(streamable_http_client(endpoint, http_client=http)) as client:
        result = await client.call_tool("search_assets", {"query": "a stove for camping", "k": 3})
        assert not result.is_error, result.structured_content


def measure_serve() -> Comparison:
    url = bench_database("serve_memory", fresh=False)
    load_catalogue(url)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCA_")}
    env.update(
        MCA_STATE_URL=url, MCA_OPS_URL=url, MCA_MCP_TOKENS=json.dumps({TOKEN: "agent"}),
        HF_HUB_OFFLINE="1", PYTHONPATH=str(PROJECT_ROOT),
    )  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-m", "mca", "serve", "--port", str(port)],
        env=env, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"mca serve did not start: {child.stderr.read().decode()[-2000:] if child.stderr else ''}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        asyncio.run(search_once(f"http://127.0.0.1:{port}/mcp"))
        proc = psutil.Process(child.pid)
        children = proc.children(recursive=True)
        peak = peak_rss(child.pid) + sum(peak_rss(c.pid) for c in children)
        now = tree_rss(proc)
    finally:
        child.terminate()
        child.wait(timeout=30)
    floor = encoder_alone_peak()
    print(
        f"mca serve after one search_assets call: peak RSS {peak / MIB:,.0f} MiB (VmHWM of the tree), "
        f"now {now / MIB:,.0f} MiB; the database is not counted; target <= {SERVE_TARGET_MIB} MiB"
    )
    path = "mca serve peak RSS after one search"
    return Comparison("memory", path, peak / MIB, floor / MIB, "onnxruntime + tokenizer alone", unit="MiB")


ENCODER_ALONE = """
import sys
from pathlib import Path
from state.embedding import resolve_model_path, DEFAULT_MODEL
from state.onnx_encoder import OnnxEncoder
OnnxEncoder(resolve_model_path(DEFAULT_MODEL)).encode(["a stove for camping"])
status = Path("/proc/self/status").read_text().splitlines()
print(next(line for line in status if line.startswith("VmHWM:")).split()[1])
"""


def encoder_alone_peak() -> int:
    """The floor: a process that only loads the ONNX session and the tokenizer and encodes once."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", ENCODER_ALONE], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the encoder alone failed: {done.stderr[-2000:]}")
    return int(done.stdout.split()[-1]) * 1024


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--again", action="store_true", help="Run the demo a second time (warm data folder).")
    parser.add_argument("--world-only", action="store_true", help="Pass --world-only to mca demo.")
    parser.add_argument("--serve-only", action="store_true", help="Measure only `mca serve` + one search.")
    args = parser.parse_args()
    serve = measure_serve()
    print_table("mca serve memory beside its target", [serve])
    record([serve])
    if args.serve_only:
        return
    extra = ["--world-only"] if args.world_only else []
    data_dir = (BENCH_DIR / "demo").resolve()
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCA_")}
    env.update(MCA_DATA_DIR=str(data_dir), HF_HUB_OFFLINE="1")
    mib = 1024 * 1024
    try:
        for label in ["first run (initdb, seed, embed catalogue)"] + (
            ["second run (warm)"] if args.again else []
        ):
            seconds, kernel_peak, peak_tree, peak_server = run_demo(env, data_dir, extra)
            print(
                f"mca demo {' '.join(extra)}, {label}: {seconds:.1f} s; "
                f"peak RSS of the mca process {kernel_peak / mib:,.0f} MiB "
                f"(ru_maxrss), sampled mca process tree {peak_tree / mib:,.0f} MiB, "
                f"embedded server {peak_server / mib:,.0f} MiB"
            )
    finally:
        subprocess.run([MCA, "db", "down"], env=env, capture_output=True, timeout=120)


if __name__ == "__main__":
    main()
