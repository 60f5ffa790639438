"""`GET /decisions/{id}` and `GET /users/{id}/decisions`: decision records as JSON.

Decision records hold customer context, so reading them needs the `read` permission (or
`admin`, `*`) whenever any credential is configured (`mca.auth`, the one authenticator).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from agent import records
from agent.errors import DecisionNotFound
from mca.auth import require
from mca.errors import Unavailable
from mca.limits import MAX_ID_CHARS

# Every route here returns customer data: one dependency guards them all.
router = APIRouter(tags=["decisions"], dependencies=[Depends(require("read"))])


def _pool(request: Request) -> Any:
    pool = getattr(request.app.state, "agent_ops_pool", None)
    if pool is None:
        raise Unavailable("decision store is not open", retry_after_s=1)
    return pool


DecisionIdPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9_.:-]+$")]
# Any id ingest accepts (an e-mail, a name with spaces) must be listable here; ingest refuses NUL.
UserIdPath = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[^\x00]+$")]


@router.get("/decisions/{decision_id}", summary="One decision: trigger, context, every step, rationale.")
async def get_decision(request: Request, decision_id: DecisionIdPath) -> dict[str, Any]:
    async with _pool(request).connection() as conn:
        found = await records.load(conn, decision_id)
    if found is None:
        raise DecisionNotFound(f"no decision {decision_id}", field="decision_id")
    async with request.app.state.agent_state_pool.connection() as state:
        found["outcomes"] = await records.outcomes(state, decision_id)
    return found


@router.get("/users/{user_id}/decisions", summary="A customer's decisions, newest first.")
async def user_decisions(
    request: Request,
    user_id: UserIdPath,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    async with _pool(request).connection() as conn:
        found = await records.for_user(conn, user_id, limit)
    return {"user_id": user_id, "decisions": found}
