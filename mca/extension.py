"""What a package contributes to the one HTTP app: routers, mounts, a lifespan, readiness checks.

A package's ``web`` module returns an ``Extension``; the app factory (`mca.app`, the
composition root) includes its routers, mounts its sub-applications and enters its lifespan
(open pools, start workers) in order, leaving them in reverse order at shutdown. Shared objects
go on ``app.state.<name>`` from a lifespan.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, FastAPI

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]
# A readiness check: None when its dependency is reachable, else a one-line reason.
ReadyCheck = Callable[[FastAPI], Awaitable[str | None]]


@dataclass
class Extension:
    name: str
    routers: Sequence[APIRouter] = ()
    mounts: Sequence[tuple[str, Any]] = ()
    lifespan: Lifespan | None = None
    ready_checks: Sequence[ReadyCheck] = ()
    tags: Sequence[dict[str, str]] = field(default_factory=list)
