"""Run by test_budget_shards as a subprocess: N send_coupon calls at once, on "go" from stdin;
prints the statuses as one JSON line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from mca.db import Stores
from mca.settings import Settings
from mca.testing import FrozenClock
from mcp_tools.guard import CallContext
from mcp_tools.runtime import Runtime
from tests.mcp_tools.helpers import NOON


async def main(url: str, policy: str, tag: str, n: int) -> None:
    settings = Settings(state_url=url, ops_url=url, policy_file=Path(policy))
    async with Runtime(settings, Stores(url, url), FrozenClock(NOON), pool_size=8).acquire() as deps:
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.readline)

        async def one(i: int) -> str:
            outcome = await deps.service.act(
                "send_coupon",
                {"user_id": "u_ok", "asset_id": "A10", "reason": "race"},
                CallContext(caller="agent", trigger="default", decision_id=f"{tag}-{i}"),
            )
            return f"{outcome.status}:{outcome.reason}"

        print(json.dumps(await asyncio.gather(*(one(i) for i in range(n)))), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
