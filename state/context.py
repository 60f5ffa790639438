"""Reading a user's live context from the state store (the `unified_context` view).

Both reads are prepared on first use: on PostgreSQL the view is a primary-key lookup plus two
index-bounded reads, shaped so the generic plan costs what a custom one does, so after its
first few executions the server stops planning it at all, and a customer with a huge history
cannot change how every other customer is read.
"""

from __future__ import annotations

from typing import Any

import psycopg

CONTEXT_SQL = "SELECT context FROM unified_context WHERE user_id = %s"
CONTACT_SQL = (
    "SELECT user_id, first_name, phone, email, timezone, tier, consent_sms, consent_email, "
    "consent_push, do_not_contact FROM unified_context WHERE user_id = %s"
)


async def load_context(conn: psycopg.AsyncConnection[Any], user_id: str) -> dict[str, Any] | None:
    """The agent's context document for one user, or None for a user with no events."""
    cur = await conn.execute(CONTEXT_SQL, (user_id,), prepare=True)
    row = await cur.fetchone()
    if row is None:
        return None
    value = row["context"] if isinstance(row, dict) else row[0]
    return dict(value)


async def load_contact(conn: psycopg.AsyncConnection[Any], user_id: str) -> dict[str, Any] | None:
    """Where and whether a user may be reached: read by tools, never shown to the model."""
    cur = await conn.execute(CONTACT_SQL, (user_id,), prepare=True)
    row = await cur.fetchone()
    if row is None:
        return None
    return dict(row) if isinstance(row, dict) else None
