"""`GET /switches` and `PUT /switches/{name}`: the kill switch and shadow mode over HTTP.

Both need an API key with the `admin` permission (`MCA_API_KEYS`; `*` grants it), always: a
switch stops or starts every action, so it is never open, even when the other routes are. The
check is the one authenticator's (`mca.auth.require`), in the credential forms every route
takes (Bearer, Segment's Basic). Every flip is audited under `<by> (key#<fingerprint>)`; the
key itself is never stored.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field

from mca.auth import Principal, require
from mca.clock import system_clock
from mca.db import connect_async
from mcp_tools import switches
from mcp_tools.policy import load_policy

ADMIN = "admin"
router = APIRouter(tags=["switches"])

# Never open, not even in open mode: a switch stops or starts every action.
Admin = Annotated[Principal, Depends(require(ADMIN, always=True))]


class SwitchChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on: bool
    reason: str = Field(min_length=1, max_length=switches.MAX_REASON_CHARS)
    by: str = Field(default="api", min_length=1, max_length=100)


async def _conn(request: Request) -> Any:
    return await connect_async(request.app.state.stores.ops_url, autocommit=True)


@router.get("/switches", summary="Each switch in force and where it comes from.")
async def get_switches(request: Request, _admin: Admin) -> dict[str, Any]:
    policy = load_policy(request.app.state.settings.guard.policy_file)
    conn = await _conn(request)
    try:
        found = await switches.status(conn, policy)
    finally:
        await conn.close()
    return {"switches": [s.to_dict() for s in found]}


@router.put("/switches/{name}", summary="Turn the kill switch or shadow mode on or off (audited).")
async def put_switch(
    request: Request,
    name: Annotated[str, Path(pattern=r"^(kill|shadow)$")],
    change: SwitchChange,
    admin: Admin,
) -> dict[str, Any]:
    policy = load_policy(request.app.state.settings.guard.policy_file)
    conn = await _conn(request)
    try:
        state = await switches.set_switch(
            conn,
            policy,
            name,
            change.on,
            by=f"{change.by} ({admin.name})",
            reason=change.reason,
            now=system_clock(),
        )
    finally:
        await conn.close()
    return state.to_dict()
