"""`GET /decisions/{id}` and `GET /users/{id}/decisions`: decision records as JSON.

When API keys are configured, reading needs a key with the `read` (or `admin`) permission;
decision records hold customer context.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request

from agent import records
from mca.settings import Settings

READ_PERMISSIONS = frozenset({"read", "admin"})
router = APIRouter(tags=["decisions"])


def _authorize(settings: Settings, authorization: str | None) -> None:
    if not settings.api_keys:
        return
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise HTTPException(401, detail={"field": "authorization", "reason": "missing Bearer API key"})
    for known, permissions in settings.api_keys.items():
        if hmac.compare_digest(known.encode(), key.strip().encode()):
            if READ_PERMISSIONS & set(permissions):
                return
            raise HTTPException(
                403, detail={"field": "authorization", "reason": "this key lacks read permission"}
            )
    raise HTTPException(401, detail={"field": "authorization", "reason": "unknown API key"})


def _pool(request: Request) -> Any:
    pool = getattr(request.app.state, "agent_ops_pool", None)
    if pool is None:
        raise HTTPException(503, detail={"reason": "decision store is not open"})
    return pool


IdPath = Annotated[str, Path(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]


@router.get("/decisions/{decision_id}", summary="One decision: trigger, context, every step, rationale.")
async def get_decision(
    request: Request, decision_id: IdPath, authorization: Annotated[str | None, Header()] = None
) -> dict[str, Any]:
    _authorize(request.app.state.settings, authorization)
    async with _pool(request).connection() as conn:
        found = await records.load(conn, decision_id)
    if found is None:
        raise HTTPException(404, detail={"field": "decision_id", "reason": f"no decision {decision_id}"})
    return found


@router.get("/users/{user_id}/decisions", summary="A customer's decisions, newest first.")
async def user_decisions(
    request: Request,
    user_id: IdPath,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    authorization: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    _authorize(request.app.state.settings, authorization)
    async with _pool(request).connection() as conn:
        found = await records.for_user(conn, user_id, limit)
    return {"user_id": user_id, "decisions": found}
