"""Waiting on state another process owns (rows, a subprocess's progress): a bounded poll.

Where a test can get an event (a callback, an asyncio.Event) it waits on that instead; these
are for conditions only visible by looking, and every wait has a deadline and names its goal.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


def wait_until(
    condition: Callable[[], bool], what: str, timeout_s: float = 20.0, every_s: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)


async def wait_until_async(
    condition: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 20.0, every_s: float = 0.05
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(every_s)
