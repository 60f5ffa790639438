"""Twilio Programmable Messaging: POST /2010-04-01/Accounts/{Sid}/Messages.json (form-encoded).

Error codes that mean "never text this number again" suppress instead of retrying: 21610
(recipient unsubscribed, replied STOP), 21211 (invalid 'To' number), 21614 (not a mobile
number), 21612 (unreachable route). 429 and 5xx are retried.

Twilio's Messages API defines no idempotency key (the create-Message operation in Twilio's
OpenAPI spec, twilio/twilio-oai spec/json/twilio_api_v2010.json, takes none; its
`IdempotencyKey` parameters belong to Calls/Payments). `I-Twilio-Idempotency-Token` is a header
Twilio *sends* on its webhooks, not one it reads. So an SMS is at-least-once: a dispatcher
killed after Twilio accepted the message but before the row was marked delivered sends it
again when the lease runs out (docs/delivery.md, "Delivery guarantees").
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from mca.settings import Settings
from mcp_tools.errors import PermanentDelivery, SuppressDelivery, ToolsError
from mcp_tools.providers.base import OutboxItem, raise_for_status, send, unsupported

SUPPRESS_CODES = {
    21610: "unsubscribed (STOP)",
    21211: "invalid number",
    21614: "not a mobile number",
    21612: "unreachable",
}


@dataclass
class TwilioProvider:
    account_sid: str
    auth_token: str
    from_number: str
    base_url: str
    client: httpx.AsyncClient
    name: str = "twilio"

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> TwilioProvider:
        if not (
            settings.providers.twilio_account_sid
            and settings.providers.twilio_auth_token
            and settings.providers.twilio_from
        ):
            raise ToolsError(
                "twilio provider needs MCA_TWILIO_ACCOUNT_SID, MCA_TWILIO_AUTH_TOKEN and MCA_TWILIO_FROM"
            )
        return cls(
            settings.providers.twilio_account_sid,
            settings.providers.twilio_auth_token.get_secret_value(),
            settings.providers.twilio_from,
            settings.providers.twilio_base_url.rstrip("/"),
            client,
        )

    async def deliver(self, item: OutboxItem) -> str | None:
        if item.kind != "sms":
            raise unsupported(self.name, item.kind)
        to = item.payload.get("to")
        if not to:
            raise PermanentDelivery("sms item has no recipient number")
        url = f"{self.base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        response = await send(
            self.client,
            self.name,
            "POST",
            url,
            data={"To": to, "From": self.from_number, "Body": item.payload.get("body", "")},
            auth=(self.account_sid, self.auth_token),
        )
        if response.status_code == 400:
            try:
                code = int(response.json().get("code"))
            except (ValueError, TypeError, AttributeError):
                code = None
            if code in SUPPRESS_CODES:
                raise SuppressDelivery(f"twilio {code}: {SUPPRESS_CODES[code]}", status=400, code=str(code))
        raise_for_status(response, self.name)
        return str(response.json().get("sid"))
