"""Salesforce REST: PATCH /services/data/vXX.X/sobjects/{SObject}/{ExternalIdField}/{user_id}.

A PATCH of the same fields is idempotent by nature. 204 (updated) and 201 (upsert created) are
success; 401 INVALID_SESSION_ID and 400 field errors are permanent; 503/429 retried.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import httpx

from mca.settings import Settings
from mcp_tools.errors import ToolsError
from mcp_tools.providers.base import OutboxItem, raise_for_status, send, unsupported


@dataclass
class SalesforceProvider:
    instance_url: str
    token: str
    sobject: str
    external_id_field: str
    api_version: str
    client: httpx.AsyncClient
    name: str = "salesforce"

    @classmethod
    def from_settings(cls, settings: Settings, client: httpx.AsyncClient) -> SalesforceProvider:
        if not settings.providers.salesforce_instance_url or settings.providers.salesforce_token is None:
            raise ToolsError("salesforce provider needs MCA_SALESFORCE_INSTANCE_URL and MCA_SALESFORCE_TOKEN")
        return cls(
            settings.providers.salesforce_instance_url.rstrip("/"),
            settings.providers.salesforce_token.get_secret_value(),
            settings.providers.salesforce_sobject,
            settings.providers.salesforce_external_id_field,
            settings.providers.salesforce_api_version,
            client,
        )

    async def deliver(self, item: OutboxItem) -> str | None:
        if item.kind != "crm":
            raise unsupported(self.name, item.kind)
        url = (
            f"{self.instance_url}/services/data/{self.api_version}/sobjects/{self.sobject}/"
            f"{self.external_id_field}/{quote(item.user_id, safe='')}"
        )
        response = await send(
            self.client,
            self.name,
            "PATCH",
            url,
            json=item.payload["fields"],
            headers={"Authorization": f"Bearer {self.token}"},
        )
        raise_for_status(response, self.name)
        if response.status_code == 201:
            return str(response.json().get("id"))
        return f"{self.sobject}/{item.user_id}"
