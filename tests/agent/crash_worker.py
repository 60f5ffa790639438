"""A worker process the crash test kills with SIGKILL: it sends a coupon, then hangs.

python -m tests.agent.crash_worker DB_URL LEASE_SECONDS
"""

from __future__ import annotations

import asyncio
import sys
import threading
from datetime import timedelta

from agent.model import ModelReply, ModelRequest
from agent.providers.scripted import ScriptedModel
from agent.runtime import agent_runtime
from mca.db import Stores
from mca.settings import Settings
from state.testing import HashEmbedder
from tests.agent.helpers import SEARCH_THEN_COUPON


def hang(request: ModelRequest) -> ModelReply:
    print("sent; hanging", flush=True)
    # Blocks the whole process, as a wedged worker would: nothing sets this event, the kill ends it.
    threading.Event().wait(timeout=3600)
    raise AssertionError("not killed")


async def main(url: str, lease_s: float) -> None:
    settings = Settings(state_url=url, ops_url=url)
    model = ScriptedModel([*SEARCH_THEN_COUPON, hang])
    async with agent_runtime(
        settings, Stores(url, url), model=model, embedder=HashEmbedder(), lease=timedelta(seconds=lease_s)
    ) as rt:
        await rt.workers[0].run_one()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
