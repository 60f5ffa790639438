"""The agent tests' constants and small decision world: customers and the catalogue rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from mca.settings import PROJECT_ROOT

TRIGGERS_FILE = PROJECT_ROOT / "config" / "triggers.yaml"
QUERIES_DIR = PROJECT_ROOT / "sql" / "triggers"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CUSTOMERS: dict[str, dict[str, Any]] = {
    "u_ana": {"first_name": "Ana", "phone": "+15550000001", "email": "ana@example.com", "timezone": "UTC",
              "tier": "gold", "consent_sms": True, "consent_email": True},
    "u_optout": {"first_name": "Olu", "phone": "+15550000004", "email": "olu@example.com", "timezone": "UTC",
                 "consent_sms": False, "consent_email": False},
    "u_bo": {"first_name": "Bo", "phone": "+15550000002", "email": "bo@example.com", "timezone": "UTC",
             "consent_sms": True, "consent_email": True},
}  # fmt: skip
CATEGORIES = ("outdoor", "apparel", "home")


def catalogue_rows() -> list[Any]:
    from state.asset_rows import AssetRow

    items = json.loads((PROJECT_ROOT / "demo" / "seed" / "catalogue.json").read_text())
    return [AssetRow.model_validate(i) for i in items if i.get("category") in CATEGORIES]
