"""Guard verdict + ledger + outbox: one ops-store transaction per allowed call.

    .venv/bin/python bench/bench_guard.py                     # 2,000 sequential calls, 4,000 with 8 callers
    .venv/bin/python bench/bench_guard.py --calls 20000 --users 10000

Two figures:
- `transaction`: the stateless verdict plus `ledger.decide_new` (idempotency lock and lookup,
  conditional upserts on frequency counters and four budget rows, tool_call, ledger, outbox and
  audit rows, commit) with the action already resolved — the path the p99 <= 5 ms target names;
- `act`: the whole `ToolService.act` (also reads the contact and the asset from the state store).
Every call is allowed (loose caps, large budgets), so every call writes every row; all callers
share the global budget rows, the contended case. Runs on its own embedded server (.mca-bench/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench_seed import bench_database

from mca.db import Stores, connect
from mca.settings import PROJECT_ROOT, Settings
from mcp_tools import ledger
from mcp_tools.guard import CallContext, judge
from mcp_tools.runtime import Runtime
from mcp_tools.service import ToolService


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def seed(url: str, users: int) -> None:
    with connect(url, autocommit=True) as conn, conn.cursor() as cur:
        rows = [
            (
                f"id-{i}",
                f"user-{i}",
                datetime(2026, 1, 1, tzinfo=UTC),
                json.dumps(
                    {
                        "email": f"u{i}@example.com",
                        "phone": f"+1555{i:07d}",
                        "timezone": "UTC",
                        "consent_email": True,
                        "consent_sms": True,
                    }
                ),
            )
            for i in range(users)
        ]
        cur.executemany(
            "INSERT INTO events (event_id, user_id, event_type, ts, properties) "
            "VALUES (%s, %s, 'identify', %s, %s)",
            rows,
        )
        cur.execute(
            "INSERT INTO assets (asset_id, kind, title, description, value, currency, active, updated_at) "
            "VALUES ('C5', 'coupon', '5 off', '5 off', 5, 'USD', true, now())"
        )
        cur.execute("VACUUM ANALYZE events")


def bench_policy(directory: Path) -> Path:
    policy = yaml.safe_load((PROJECT_ROOT / "config" / "policy.yaml").read_text())
    policy["caps"] = {"day": 100000, "week": 100000, "month": 100000}
    policy["coupons"]["approval_above"] = None
    policy["coupons"]["per_user"] = {"month": 10**9}
    policy["budgets"] = {
        "global": {"day": 10**9, "month": 10**9},
        "per_user": {"month": 10**9},
        "per_asset_redemptions": 10**9,
    }
    policy["triggers"]["default"]["budget"] = {"day": 10**9}
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


async def transaction_only(service: ToolService, users: int, n: int, callers: int, tag: str) -> list[float]:
    rng = random.Random(7)
    policy = service.policy()
    # Resolve a pool of actions up front: the measured part is verdict + ledger + outbox.
    prepared = []
    for i in range(min(users, 500)):
        action, contact = await service.build_action(
            policy, "send_coupon", {"user_id": f"user-{i}", "asset_id": "C5", "reason": "bench"}
        )
        prepared.append((action, contact))
    samples: list[float] = []

    async def worker(w: int) -> None:
        for j in range(n // callers):
            action, contact = prepared[rng.randrange(len(prepared))]
            ctx = CallContext("agent", "default", f"{tag}-{w}-{j}")
            key = ledger.idem_key(ctx.caller, ctx.decision_id, action.tool, action.arguments)
            started = time.perf_counter()
            now = service.clock()
            verdict = judge(policy, ctx, action, contact, now)
            async with service.ops_pool.connection() as conn:
                outcome = await ledger.decide_new(conn, policy, ctx, action, verdict, now, key)
            samples.append((time.perf_counter() - started) * 1000)
            assert outcome.status == "allowed", outcome

    await asyncio.gather(*(worker(w) for w in range(callers)))
    return samples


async def whole_act(service: ToolService, users: int, n: int, callers: int, tag: str) -> list[float]:
    rng = random.Random(11)
    samples: list[float] = []

    async def worker(w: int) -> None:
        for j in range(n // callers):
            args = {"user_id": f"user-{rng.randrange(users)}", "asset_id": "C5", "reason": "bench"}
            started = time.perf_counter()
            outcome = await service.act(
                "send_coupon", args, CallContext("agent", "default", f"{tag}-{w}-{j}")
            )
            samples.append((time.perf_counter() - started) * 1000)
            assert outcome.status == "allowed", outcome

    await asyncio.gather(*(worker(w) for w in range(callers)))
    return samples


def report(name: str, samples: list[float], seconds: float | None = None) -> None:
    line = (
        f"{name:<34} n={len(samples):>6}  p50={statistics.median(samples):6.2f} ms  "
        f"p99={percentile(samples, 0.99):6.2f} ms"
    )
    if seconds:
        line += f"  {len(samples) / seconds:8.0f} calls/s"
    print(line, flush=True)


async def run(args: argparse.Namespace) -> None:
    url = bench_database("guard_bench", fresh=True)
    seed(url, args.users)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(state_url=url, ops_url=url, policy_file=bench_policy(Path(tmp)))
        async with Runtime(settings, Stores(url, url), pool_size=max(8, args.callers)).acquire() as deps:
            service = deps.service
            await transaction_only(service, args.users, 300, 1, "warm")
            report("transaction, 1 caller", await transaction_only(service, args.users, args.calls, 1, "t1"))
            started = time.perf_counter()
            samples = await transaction_only(service, args.users, args.calls * 2, args.callers, "t8")
            report(f"transaction, {args.callers} callers", samples, time.perf_counter() - started)
            report(
                "act (with state reads), 1 caller", await whole_act(service, args.users, args.calls, 1, "a1")
            )
            started = time.perf_counter()
            samples = await whole_act(service, args.users, args.calls * 2, args.callers, "a8")
            report(f"act (with state reads), {args.callers} c.", samples, time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--callers", type=int, default=8)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
