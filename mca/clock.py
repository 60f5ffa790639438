"""Time as a dependency: every component takes a `Clock`, so tests can stand anywhere in time
(``mca.testing.FrozenClock``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)
