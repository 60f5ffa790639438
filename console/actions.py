"""What an admin may change from the console: release or refuse a held action, flip a switch.

Each goes through the same functions the CLI uses (the tool service's release/reject, the
switches module), so the console changes nothing the CLI or API could not, and records who:
the name the operator types beside their key's fingerprint.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Path, Request
from fastapi.responses import RedirectResponse, Response

from console.session import PATH, ConsoleRefusal, Viewer, check_csrf, current_viewer, require_admin
from mca.clock import system_clock

router = APIRouter()
Seen = Annotated[Viewer, Depends(current_viewer)]
MAX_BY_CHARS = 100


def _who(viewer: Viewer, by: str) -> str:
    name = by.strip()
    if not name or len(name) > MAX_BY_CHARS:
        raise ConsoleRefusal(422, f"by: say who decides, in 1..{MAX_BY_CHARS} characters")
    return f"{name} ({viewer.name})"


def _back(anchor: str) -> Response:
    return RedirectResponse(f"{PATH}/governance#{anchor}", status_code=303)


def _admin_form(viewer: Viewer, csrf: str) -> None:
    # CSRF first: a forged form learns nothing, not even whether its victim is an admin.
    check_csrf(viewer, csrf)
    require_admin(viewer)


@router.post("/holds/{pending_id}/{choice}")
async def decide_hold(
    request: Request,
    viewer: Seen,
    pending_id: Annotated[int, Path(ge=1)],
    choice: Annotated[str, Path(pattern="^(approve|reject)$")],
    by: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    from mcp_tools.errors import NotFound

    _admin_form(viewer, csrf)
    who = _who(viewer, by)
    service = request.app.state.tools
    try:
        if choice == "approve":
            outcome = await service.release(pending_id, by=who, approve=True)
        else:
            outcome = await service.reject(pending_id, by=who)
    except NotFound as err:
        raise ConsoleRefusal(404, f"approval {pending_id}: {err}") from None
    if outcome is None:
        raise ConsoleRefusal(409, f"approval {pending_id} is being decided by someone else")
    return _back("holds")


@router.post("/switches/{name}")
async def flip_switch(
    request: Request,
    viewer: Seen,
    name: Annotated[str, Path(pattern="^(kill|shadow)$")],
    on: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    by: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> Response:
    import asyncio

    from mcp_tools import switches
    from mcp_tools.errors import ToolInputError
    from mcp_tools.policy import load_policy

    _admin_form(viewer, csrf)
    if on not in ("on", "off"):
        raise ConsoleRefusal(422, "on: choose on or off")
    who = _who(viewer, by)
    policy = await asyncio.to_thread(load_policy, request.app.state.settings.guard.policy_file)
    async with request.app.state.ops_pool.connection() as conn:
        try:
            await switches.set_switch(
                conn, policy, name, on == "on", by=who, reason=reason, now=system_clock()
            )
        except ToolInputError as err:
            raise ConsoleRefusal(422, f"{err.field}: {err}") from None
    return _back("switches")
