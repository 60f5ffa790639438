"""The MCP server as an extension of the service app (`mca/app.py`): POST /mcp, bearer auth;
and the switches API (`mcp_tools.switch_api`)."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.routing import Route

from mca.db import Stores
from mca.extension import Extension
from mca.services import Services
from mca.settings import Settings
from mcp_tools.http import asgi_app
from mcp_tools.switch_api import router as switch_router


def extension(settings: Settings, stores: Stores, services: Services | None = None) -> Extension:
    """With `services` the tools use the process's pools and policy store; without, their own."""
    handler, lifespan = asgi_app(settings, stores, services=services)
    router = APIRouter()
    # A route at exactly /mcp (a Mount would only answer /mcp/ and redirect the rest).
    router.routes.append(Route("/mcp", endpoint=handler, methods=["GET", "POST", "DELETE"]))
    return Extension(
        name="mcp",
        routers=[router, switch_router],
        lifespan=lifespan,
        tags=[
            {"name": "mcp", "description": "MCP tools over streamable HTTP (bearer token)."},
            {"name": "switches", "description": "Kill switch and shadow mode (admin API key)."},
        ],
    )
