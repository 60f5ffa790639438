"""The offline default: a delivery is a log line (and the outbox row's status)."""

from __future__ import annotations

import json
import logging

from mcp_tools.providers.base import OutboxItem

log = logging.getLogger("mca.deliveries")


class LogProvider:
    name = "log"

    async def deliver(self, item: OutboxItem) -> str | None:
        log.info(
            "deliver %s",
            json.dumps(
                {
                    "outbox_id": item.outbox_id,
                    "kind": item.kind,
                    "user_id": item.user_id,
                    "idempotency_key": item.idem_key,
                    "payload": item.payload,
                },
                default=str,
            ),
        )
        return f"log-{item.outbox_id}"
