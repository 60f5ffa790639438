"""A clock a test moves by hand, for any component that takes a `mca.clock.Clock`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FrozenClock:
    """Stands still until told to move; always timezone-aware UTC."""

    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self.now = now.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now = self.now + timedelta(**delta)

    def set(self, now: datetime) -> None:
        self.now = now.astimezone(UTC)
