"""Peak resident memory of `mca demo` (the Python process with the embedding model loaded),
plus the embedded PostgreSQL server's memory while it runs.

    .venv/bin/python bench/bench_demo_memory.py            # a fresh data folder: first-run demo
    .venv/bin/python bench/bench_demo_memory.py --again    # also a second, warm run
    .venv/bin/python bench/bench_demo_memory.py --world-only   # the state-engine demo alone

The demo runs as a child process in its own data folder under .mca-bench/ and is stopped after.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

BENCH_DIR = Path(os.environ.get("MCA_BENCH_DIR", ".mca-bench"))
MCA = str(Path(sys.executable).with_name("mca"))


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--again", action="store_true", help="Run the demo a second time (warm data folder).")
    parser.add_argument("--world-only", action="store_true", help="Pass --world-only to mca demo.")
    args = parser.parse_args()
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
