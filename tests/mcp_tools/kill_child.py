"""Run by test_concurrency as a subprocess: one send_coupon call, to be SIGKILLed mid-transaction."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from mca.db import Stores
from mca.settings import Settings
from mcp_tools.guard import CallContext
from mcp_tools.runtime import Runtime


async def main(url: str, policy: str) -> None:
    settings = Settings(state_url=url, ops_url=url, policy_file=Path(policy))
    async with Runtime(settings, Stores(url, url), pool_size=2).acquire() as deps:
        print("ready", flush=True)
        await deps.service.act(
            "send_coupon",
            {"user_id": "u_ok", "asset_id": "A10", "reason": "killed"},
            CallContext(caller="agent", trigger="default", decision_id="doomed"),
        )
        print("finished", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
