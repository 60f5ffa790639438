"""The agent's own figures, on the embedded PostgreSQL with the rules brain.

    .venv/bin/python bench/bench_agent.py            # defaults: 300 sequential, 1000 jobs x 4 workers
    .venv/bin/python bench/bench_agent.py --sequential 1000 --jobs 4000 --workers 4

1. trigger -> decision recorded: a purchase event is committed, the trigger service reads it
   and queues a job, one worker claims it, reads the context, runs the rules brain through the
   in-process MCP server (asset search with query embedding, guarded send_coupon, outbox row)
   and records the decision. One event at a time: p50/p99.
2. decisions/s with N workers draining a queue of jobs.
3. the loop's own overhead per model call: a zero-latency scripted model whose calls the loop
   answers itself (malformed arguments), and the same with one in-process MCP tool call per turn.
4. decisions/s in `model` vs `bandit` selection mode, alternated in the same run, and the
   allocation step's cost per decision (p50/p99): the allocation must cost at most 10%.

The guard's budgets and caps are raised (bench_guard's policy) so every decision does its full
work; the world is seeded into a fresh database on the benchmark server (.mca-bench/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_guard import bench_policy
from bench_seed import bench_database, database_cpu_seconds

from agent.loop import Limits, run_loop
from agent.model import Brief, ModelReply, ToolCall
from agent.providers.rules import RulesModel
from agent.providers.scripted import ScriptedModel, call
from agent.queue import NewJob, enqueue
from agent.runtime import agent_runtime, trigger_service
from agent.toolbox import open_toolbox
from demo.seed.load import ensure_catalogue, seed_world, world_loaded
from demo.seed.products import PRODUCTS
from demo.seed.world import user_id_of
from mca.db import Stores, connect, connect_async
from mca.settings import PROJECT_ROOT, Settings
from state.embedding import get_embedder

INSERT = (
    "INSERT INTO events (event_id, user_id, event_type, ts, value, sku, category, properties) "
    "VALUES (%s, %s, 'purchase', %s, %s, %s, %s, %s)"
)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def report(name: str, samples: list[float]) -> None:
    print(
        f"{name}: n={len(samples)} p50={statistics.median(samples):.2f} ms "
        f"p99={percentile(samples, 0.99):.2f} ms max={max(samples):.2f} ms"
    )


def world(users: int, events: int, tmp: Path, database: str | None = None) -> tuple[Settings, Stores]:
    """A seeded world and settings for it: in a fresh database, or in `database`, kept between
    runs and seeded only the first time."""
    url = bench_database(database or f"agent_{uuid.uuid4().hex[:8]}", fresh=database is None)
    with connect(url, autocommit=True) as conn:
        if database is None or not world_loaded(conn, 7):
            print(seed_world(conn, users, events, 7).describe())
            ensure_catalogue(conn, get_embedder(), progress=False)
            conn.execute("VACUUM ANALYZE events")
    settings = Settings(
        state_url=url,
        ops_url=url,
        data_dir=tmp,
        policy_file=bench_policy(tmp),
        triggers_file=PROJECT_ROOT / "config" / "triggers.yaml",
    )
    return settings, Stores(url, url)


def purchase(rng: random.Random, users: int, n: int, *, in_order: bool = False) -> tuple[Any, ...]:
    product = PRODUCTS[n % len(PRODUCTS)] if in_order else rng.choice(PRODUCTS)
    value = max(100.0, product.price)
    props = json.dumps({"product_name": product.name, "order_id": f"bench-{n}"})
    user = user_id_of(rng.randrange(users))
    return (f"bench-{uuid.uuid4().hex}", user, datetime.now(UTC), value, product.sku, product.category, props)


async def trigger_to_decision(
    settings: Settings, stores: Stores, users: int, n: int, *, warm_up: int = 20, in_order: bool = False
) -> list[float]:
    rng = random.Random(n * 7919 + warm_up)  # each phase its own users: cooldowns would skip repeats
    samples: list[float] = []
    cooled = 0
    state = await connect_async(stores.state_url, autocommit=True)
    async with (
        trigger_service(settings, stores, start="latest") as triggers,
        agent_runtime(settings, stores, workers=1, model=RulesModel()) as agents,
    ):
        await triggers.step_stream()
        worker = agents.workers[0]
        for i in range(n + warm_up):
            started = time.perf_counter()
            await state.execute(INSERT, purchase(rng, users, i, in_order=in_order))
            made = await triggers.step_stream()
            deadline = time.perf_counter() + 5
            while not made.events and time.perf_counter() < deadline:
                # Another transaction in the cluster (autovacuum's ANALYZE) is older than ours:
                # the tail waits for it, as the service's next poll would.
                await asyncio.sleep(0.001)
                made = await triggers.step_stream()
            record = await worker.run_one()
            elapsed = (time.perf_counter() - started) * 1000
            if record and made.jobs and i >= warm_up and elapsed > 100 and os.environ.get("BENCH_DEBUG"):
                steps = [
                    (s.tool_name, round(s.latency_ms or 0)) for s in record.transcript.steps if s.tool_name
                ]
                print(f"slow {elapsed:.0f} ms: decide {record.latency_ms:.0f} ms {steps}")
            assert made.jobs or made.cooled, made
            cooled += made.cooled
            if made.jobs:
                assert record is not None
                if i >= warm_up:  # warm-up: prepared statements, query embeddings
                    samples.append(elapsed)
    await state.close()
    if cooled:
        print(f"  ({cooled} events fell in a cooldown and made no job)")
    return samples


async def enqueue_jobs(stores: Stores, users: int, jobs: int, selection: str = "model") -> None:
    rng = random.Random(2)
    ops = await connect_async(stores.ops_url, autocommit=True)
    now = datetime.now(UTC)
    for i in range(jobs):
        product = rng.choice(PRODUCTS)
        user = user_id_of(rng.randrange(users))
        event = {"type": "purchase", "event_id": f"t{i}", "user_id": user, "value": product.price,
                 "sku": product.sku, "category": product.category}  # fmt: skip
        await enqueue(ops, NewJob(f"bench-{uuid.uuid4().hex}", "big_purchase", user, "post_purchase",
                                  ("search_assets", "get_user_context", "send_coupon"), event, 3,
                                  timedelta(minutes=10), selection=selection), now=now)  # fmt: skip
    await ops.close()


ALLOCATION_MS: list[float] = []  # each bandit decision's allocation step, filled by drain_queue
# Decisions each process makes before the clock starts: a long-running process is measured, not
# its first decisions (lazy imports, cold caches, the first prepared statements).
WARM_UP_JOBS = 20


async def drain_queue(
    settings: Settings, stores: Stores, workers: int, ready: Any, go: Any
) -> tuple[int, float, float]:
    """Drain the queue with `workers` asyncio workers once `go` is set, after a warm-up: the
    decisions made, the seconds they took, and the CPU seconds they cost (this process and its
    database's backends: a figure other load on the machine moves less than the wall time)."""
    done = 0
    async with agent_runtime(settings, stores, workers=workers, model=RulesModel()) as agents:
        for _ in range(WARM_UP_JOBS):
            await agents.workers[0].run_one()
        if agents.deps.allocator is not None:
            agents.deps.allocator.timings = ALLOCATION_MS

        async def drain(worker: Any) -> None:
            nonlocal done
            while await worker.run_one() is not None:
                done += 1

        ready.set()
        await asyncio.to_thread(go.wait)
        started, cpu = time.perf_counter(), time.process_time() + database_cpu_seconds(stores.ops_url)
        await asyncio.gather(*(drain(w) for w in agents.workers))
        cpu = time.process_time() + database_cpu_seconds(stores.ops_url) - cpu
        return done, time.perf_counter() - started, cpu


def _drain_process(settings: Settings, stores: Stores, workers: int, ready: Any, go: Any, out: Any) -> None:
    out.put(asyncio.run(drain_queue(settings, stores, workers, ready, go))[0])


async def throughput(
    settings: Settings, stores: Stores, users: int, jobs: int, workers: int, processes: int = 1,
    selection: str = "model", cpu_ms: list[float] | None = None,
) -> float:  # fmt: skip
    """Decisions/s draining `jobs` queued jobs. With processes > 1 the workers are split across
    processes, as `mca agent` scales in production (jobs are claimed with SKIP LOCKED). Each
    process loads its model and pools and makes WARM_UP_JOBS decisions before the clock starts.
    In one process, `cpu_ms` gets the CPU ms per decision (the process and its backends)."""
    await enqueue_jobs(stores, users, jobs + WARM_UP_JOBS * processes, selection)
    if processes == 1:
        import threading

        ready, go = threading.Event(), threading.Event()
        go.set()
        done, elapsed, cpu = await drain_queue(settings, stores, workers, ready, go)
        if cpu_ms is not None:
            cpu_ms.append(cpu * 1000 / done)
    else:
        import multiprocessing

        mp = multiprocessing.get_context("spawn")
        go, out = mp.Event(), mp.Queue()
        readies = [mp.Event() for _ in range(processes)]
        share = [workers // processes + (1 if i < workers % processes else 0) for i in range(processes)]
        procs = [
            mp.Process(target=_drain_process, args=(settings, stores, max(n, 1), ready, go, out))
            for n, ready in zip(share, readies, strict=True)
        ]
        for proc in procs:
            proc.start()
        for ready in readies:
            await asyncio.to_thread(ready.wait, 120)
        started = time.perf_counter()
        go.set()
        done = sum([await asyncio.to_thread(out.get, True, 600) for _ in procs])
        elapsed = time.perf_counter() - started
        for proc in procs:
            proc.join(timeout=30)
    assert done == jobs, (done, jobs)
    return done / elapsed


async def loop_overhead(settings: Settings, stores: Stores, turns: int, rounds: int) -> None:
    from mcp_tools.server import build_server

    brief = Brief("dec_bench", "big_purchase", "post_purchase", user_id_of(1), {}, {}, ("get_user_context",))
    bad = ToolCall(
        id="x", name="send_coupon", arguments={}, error="arguments are not valid JSON", raw_arguments="{"
    )
    server = build_server(settings, stores, embedder=get_embedder())
    async with open_toolbox(server) as toolbox:
        tools = await toolbox.specs()
        for label, turn in (
            ("loop overhead per model call (zero-latency model, no tool)", lambda r: ModelReply(None, [bad])),
            ("loop per model call incl. one in-process MCP get_user_context", None),
        ):
            per_call: list[float] = []
            for _ in range(rounds):
                script: list[Any] = (
                    [turn] * turns if turn else [[call("get_user_context", user_id=user_id_of(1))]] * turns
                )
                model = ScriptedModel(script)
                started = time.perf_counter()
                t = await run_loop(
                    model=model, toolbox=toolbox, brief=brief, messages=[{"role": "user", "content": "go"}],
                    tools=tools, limits=Limits(max_model_calls=turns + 1, max_tool_calls=turns + 1),
                    deadline=datetime.now(UTC) + timedelta(minutes=1), clock=lambda: datetime.now(UTC),
                )  # fmt: skip
                per_call.append((time.perf_counter() - started) * 1000 / t.model_calls)
            report(label, per_call)


def allocate_only(rounds: int, arms: int = 10) -> list[float]:
    """learn.allocate alone (P(best) from joint draws, floor, draw) for `arms` warm posteriors."""
    import numpy as np

    from agent.allocation import ALLOCATION_DRAWS
    from learn.allocate import SelectionMode, allocate
    from learn.posterior import ArmStats, RewardModel, posterior

    rng = np.random.default_rng(0)
    names = [f"a{i}" for i in range(arms)]
    posts = [posterior(ArmStats(a, 200, 4 + 2 * i), RewardModel.CONVERSION) for i, a in enumerate(names)]
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        allocate(names, SelectionMode.BANDIT, posts, rng=rng, draws=ALLOCATION_DRAWS)
        out.append((time.perf_counter() - started) * 1000)
    return out


async def compare_selection(settings: Settings, stores: Stores, args: argparse.Namespace) -> None:
    """Decisions/s of the whole loop in `model` and `bandit` mode, alternated in one run."""
    rates: dict[str, list[float]] = {"model": [], "bandit": []}
    cpu: dict[str, list[float]] = {"model": [], "bandit": []}
    for mode in ("model", "bandit"):  # untimed: the process's first decisions (embeddings, plans)
        await throughput(settings, stores, args.users, args.jobs, args.workers, selection=mode)
    ALLOCATION_MS.clear()
    for _ in range(args.selection_rounds):
        for mode in ("model", "bandit"):
            rates[mode].append(await throughput(
                settings, stores, args.users, args.jobs, args.workers, selection=mode, cpu_ms=cpu[mode]
            ))  # fmt: skip
    model, bandit = statistics.median(rates["model"]), statistics.median(rates["bandit"])
    print(
        f"decisions/s, model mode (the floor): median {model:.0f} over {[round(r) for r in rates['model']]}"
    )
    print(f"decisions/s, bandit mode: median {bandit:.0f} over {[round(r) for r in rates['bandit']]}")
    print(f"bandit / model: {bandit / model:.2f} (goal >= 0.90)")
    per = {mode: statistics.median(ms) for mode, ms in cpu.items()}
    print(f"CPU per decision (this process + its backends), median ms: model {per['model']:.2f}, "
          f"bandit {per['bandit']:.2f}; model / bandit {per['model'] / per['bandit']:.2f} "
          "(the decisions/s ratio a machine with nothing else running would show)")  # fmt: skip
    report("allocation step per bandit decision (dry run of every candidate, Thompson draw, logged row)",
           ALLOCATION_MS)  # fmt: skip
    report("learn.allocate alone, 10 candidates", allocate_only(2_000))


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings, stores = world(args.users, args.events, Path(tmp))
        if args.selection_only:
            await compare_selection(settings, stores, args)
            return
        cold = await trigger_to_decision(
            settings, stores, args.users, len(PRODUCTS), warm_up=0, in_order=True
        )
        report("trigger -> decision recorded, cold query embeddings (first search per product)", cold)
        samples = await trigger_to_decision(settings, stores, args.users, args.sequential)
        report("trigger -> decision recorded, warm (1 worker, event committed -> decision saved)", samples)
        rate = await throughput(settings, stores, args.users, args.jobs, args.workers)
        print(
            f"decisions/s with {args.workers} workers in 1 process: {rate:.0f} "
            f"({args.jobs} jobs, {os.cpu_count()} cores)"
        )
        if args.processes > 1:
            rate = await throughput(settings, stores, args.users, args.jobs, args.workers, args.processes)
            print(
                f"decisions/s with {args.workers} workers in {args.processes} processes: {rate:.0f} "
                f"({args.jobs} jobs, {os.cpu_count()} cores)"
            )
        await loop_overhead(settings, stores, turns=20, rounds=args.rounds)
        await compare_selection(settings, stores, args)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--processes", type=int, default=2, help="also measure workers split over N processes"
    )
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--selection-rounds", type=int, default=2, help="model/bandit throughput pairs")
    parser.add_argument("--selection-only", action="store_true", help="only the model vs bandit figures")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
