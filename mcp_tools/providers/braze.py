"""Braze REST: coupons by email; points and CRM fields as user attributes through POST
/users/track (points as an increment).

Braze defines one idempotency key: `external_send_id` on the Transactional Email endpoint
(POST /transactional/v1/campaigns/{campaign_id}/send), "used as a deduplication key, which
Braze will store for 24 hours" (braze-inc/braze-docs, post_send_transactional_message.md).
With `MCA_BRAZE_TRANSACTIONAL_CAMPAIGN_ID` set, coupons go there with the outbox key (a hex
sha256, inside Braze's `^[a-zA-Z0-9-_+/=]+$`). Otherwise they go through /messages/send and
/users/track, which take no key: at-least-once, and a points increment delivered twice after a
dispatcher crash counts twice (docs/delivery.md, "Delivery guarantees").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from mca.settings import Settings
from mcp_tools.errors import PermanentDelivery, ToolsError
from mcp_tools.providers.base import OutboxItem, raise_for_status, send, unsupported


@dataclass
class BrazeProvider:
    api_key: str
    base_url: str
    app_id: str | None
    client: httpx.AsyncClient
    transactional_campaign_id: str | None = None
    name: str = "braze"

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> BrazeProvider:
        if settings.providers.braze_api_key is None:
            raise ToolsError("braze provider needs MCA_BRAZE_API_KEY")
        return cls(
            settings.providers.braze_api_key.get_secret_value(),
            settings.providers.braze_base_url.rstrip("/"),
            settings.providers.braze_app_id,
            client,
            settings.providers.braze_transactional_campaign_id,
        )

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await send(
            self.client,
            self.name,
            "POST",
            f"{self.base_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        raise_for_status(response, self.name)
        data = response.json()
        if "dispatch_id" not in data and data.get("message") not in ("success", "queued"):
            raise PermanentDelivery(f"braze said {data.get('message')!r}: {data.get('errors')}")
        return dict(data)

    async def deliver(self, item: OutboxItem) -> str | None:
        p = item.payload
        if item.kind == "coupon" and self.transactional_campaign_id:
            data = await self._post(
                f"/transactional/v1/campaigns/{self.transactional_campaign_id}/send",
                {
                    "external_send_id": item.idem_key,
                    "trigger_properties": {
                        k: p.get(k) for k in ("asset_id", "title", "value", "currency", "first_name")
                    },
                    "recipient": {"external_user_id": item.user_id},
                },
            )
            return str(data.get("dispatch_id") or item.idem_key)
        if item.kind == "coupon":
            email: dict[str, Any] = {
                "subject": f"A gift for you: {p.get('title')}",
                "body": f"Hi {p.get('first_name') or 'there'}, here is your {p.get('title')} "
                f"({p.get('value')} {p.get('currency') or ''}). Your code: {p.get('coupon_code')}",
                "extras": {
                    "asset_id": p.get("asset_id"),
                    "coupon_code": p.get("coupon_code"),
                    "mca_idempotency_key": item.idem_key,
                },
            }
            if self.app_id:
                email["app_id"] = self.app_id
            data = await self._post(
                "/messages/send", {"external_user_ids": [item.user_id], "messages": {"email": email}}
            )
            return str(data.get("dispatch_id") or item.idem_key)
        if item.kind == "points":
            attrs: dict[str, Any] = {"external_id": item.user_id, "loyalty_points": {"inc": int(p["points"])}}
        elif item.kind == "crm":
            attrs = {"external_id": item.user_id, **p["fields"]}
        else:
            raise unsupported(self.name, item.kind)
        await self._post("/users/track", {"attributes": [attrs]})
        return item.idem_key
