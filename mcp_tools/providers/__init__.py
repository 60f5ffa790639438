"""Delivery providers: where outbox rows go. Each speaks one real API through httpx."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from mca.settings import Settings
from mcp_tools.errors import ToolsError
from mcp_tools.providers.base import OutboxItem, Provider
from mcp_tools.providers.braze import BrazeProvider
from mcp_tools.providers.log import LogProvider
from mcp_tools.providers.salesforce import SalesforceProvider
from mcp_tools.providers.twilio import TwilioProvider
from mcp_tools.providers.webhook import WebhookProvider

__all__ = ["OutboxItem", "Provider", "build_providers"]

NAMES = ("log", "webhook", "twilio", "braze", "salesforce")


def build_providers(
    settings: Settings, client: httpx.AsyncClient, ops_pool: AsyncConnectionPool[Any]
) -> dict[str, Provider]:
    """The providers the settings route to (configured ones only: a missing key is a clear error).
    `ops_pool` holds the log provider's record of what it already delivered."""
    wanted = {settings.dispatch.provider, *settings.dispatch.routes.values()}
    unknown = sorted(wanted - set(NAMES))
    if unknown:
        raise ToolsError(f"unknown dispatch provider(s) {unknown}; known: {list(NAMES)}")
    factories: dict[str, Callable[[], Provider]] = {
        "log": lambda: LogProvider(ops_pool),
        "webhook": lambda: WebhookProvider.from_settings(settings, client),
        "twilio": lambda: TwilioProvider.from_settings(settings, client),
        "braze": lambda: BrazeProvider.from_settings(settings, client),
        "salesforce": lambda: SalesforceProvider.from_settings(settings, client),
    }
    return {name: factories[name]() for name in sorted(wanted)}
