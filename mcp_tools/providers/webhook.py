"""POST each item as JSON to a URL, signed with Standard Webhooks (webhook-id = idempotency key)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks.webhooks import Webhook

from mca.settings import Settings
from mcp_tools.errors import ToolsError
from mcp_tools.providers.base import OutboxItem, raise_for_status, send


@dataclass
class WebhookProvider:
    url: str
    secret: str
    client: httpx.AsyncClient
    name: str = "webhook"

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> WebhookProvider:
        if not settings.dispatch.webhook_url or settings.dispatch.webhook_secret is None:
            raise ToolsError(
                "webhook provider needs MCA_DISPATCH_WEBHOOK_URL and MCA_DISPATCH_WEBHOOK_SECRET"
            )
        return cls(settings.dispatch.webhook_url, settings.dispatch.webhook_secret.get_secret_value(), client)

    async def deliver(self, item: OutboxItem) -> str | None:
        body = json.dumps(
            {
                "type": f"mca.{item.kind}",
                "outbox_id": item.outbox_id,
                "user_id": item.user_id,
                "data": item.payload,
            },
            default=str,
            separators=(",", ":"),
        )
        now = datetime.now(UTC)
        signature = Webhook(self.secret).sign(item.idem_key, now, body)
        headers = {
            "content-type": "application/json",
            "webhook-id": item.idem_key,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": signature,
            "idempotency-key": item.idem_key,
        }
        response = await send(self.client, self.name, "POST", self.url, content=body, headers=headers)
        raise_for_status(response, self.name)
        return item.idem_key
