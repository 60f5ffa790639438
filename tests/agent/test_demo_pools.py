"""One `mca demo` is one process with one service container: it opens two pools to the
embedded server (transactional and autocommit), not one per component (six before issue 9)."""

from __future__ import annotations

from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from demo.product import run_story


async def test_the_whole_demo_opens_two_pools(
    agent_settings, agent_stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[str] = []
    real_open = AsyncConnectionPool.open

    async def counted(self: AsyncConnectionPool[Any], *args: Any, **kwargs: Any) -> None:
        opened.append(self.name)
        await real_open(self, *args, **kwargs)

    monkeypatch.setattr(AsyncConnectionPool, "open", counted)
    lines: list[str] = []
    report = await run_story(agent_settings, agent_stores, lines.append, follow=False, timeout_s=60)
    assert report.finished, "\n".join(lines)
    assert agent_stores.shared
    assert len(opened) == 2, opened
