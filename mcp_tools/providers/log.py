"""The offline default: a delivery is a log line (and the outbox row's status).

Each key is delivered once: the provider records the outbox row's idempotency key and the line
in `log_deliveries` (its journal) before it writes the line, so a row sent again after a
dispatcher crash (its lease ran out while its status still said `sending`) writes nothing a
second time. A crash between the two leaves the delivery in the journal, not in the log.

The line is for debugging, not a copy of the customer's data: phone numbers keep their last
four digits, emails their domain, free text (message bodies, reasons, CRM values) becomes its
length and a short hash, so two lines can still be compared.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from mcp_tools.providers.base import OutboxItem

log = logging.getLogger("mca.deliveries")

RECORD = """
INSERT INTO log_deliveries (idem_key, outbox_id, line, delivered_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (idem_key) DO NOTHING
RETURNING outbox_id
"""
PHONE_KEYS = frozenset({"to", "phone"})
EMAIL_KEYS = frozenset({"email"})
TEXT_KEYS = frozenset({"body", "text", "reason", "first_name"})


def mask_phone(value: str) -> str:
    digits = [c for c in value if c.isdigit()]
    return "*" * max(len(digits) - 4, 0) + "".join(digits[-4:])


def mask_email(value: str) -> str:
    _, at, domain = value.rpartition("@")
    return f"***@{domain}" if at else "***"


def mask_text(value: str) -> str:
    digest = hashlib.sha256(value.encode()).hexdigest()[:12]
    return f"<{len(value)} chars sha256:{digest}>"


def masked(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload as it may appear in a log line."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if not isinstance(value, str) and key != "fields":
            out[key] = value
        elif key in PHONE_KEYS:
            out[key] = mask_phone(value)
        elif key in EMAIL_KEYS:
            out[key] = mask_email(value)
        elif key in TEXT_KEYS:
            out[key] = mask_text(value)
        elif key == "fields" and isinstance(value, dict):
            out[key] = {k: mask_text(v) if isinstance(v, str) else v for k, v in value.items()}
        else:
            out[key] = value
    return out


@dataclass
class LogProvider:
    pool: AsyncConnectionPool[Any]
    name: str = "log"

    async def deliver(self, item: OutboxItem) -> str | None:
        line = json.dumps(
            {
                "outbox_id": item.outbox_id,
                "kind": item.kind,
                "user_id": item.user_id,
                "idempotency_key": item.idem_key,
                "payload": masked(item.payload),
            },
            default=str,
        )
        async with self.pool.connection() as conn:
            params = (item.idem_key, item.outbox_id, Jsonb(json.loads(line)), datetime.now(UTC))
            row = await (await conn.execute(RECORD, params)).fetchone()
        if row is None:
            log.debug("outbox %s: key %s already delivered, not logged again", item.outbox_id, item.idem_key)
        else:
            log.info("deliver %s", line)
        return f"log-{item.outbox_id}"
