"""`mca audit export`: every guard verdict since a time, as CSV or JSON lines, streamed."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import psycopg

from mcp_tools.errors import ToolInputError

EXPORT_SQL = """
SELECT audit_id, at, caller, trigger_name, decision_id, tool, user_id, verdict, reasons, message, call_id,
       policy_version, arguments
FROM audit_log WHERE at >= %s ORDER BY audit_id
"""
COLUMNS = [
    "audit_id",
    "at",
    "caller",
    "trigger_name",
    "decision_id",
    "tool",
    "user_id",
    "verdict",
    "reasons",
    "message",
    "call_id",
    "policy_version",
    "arguments",
]
_RELATIVE = re.compile(r"^(\d+)\s*([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An ISO date or datetime (UTC when no zone is given) or a span back from now: 30m, 24h, 7d, 2w."""
    now = now or datetime.now(UTC)
    match = _RELATIVE.match(text.strip())
    if match:
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ToolInputError(
            "invalid_argument",
            f"--since {text!r}: use an ISO date/time or a span like 24h or 7d",
            field="since",
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def rows_since(conn: psycopg.Connection[Any], since: datetime) -> Iterator[dict[str, Any]]:
    with conn.cursor(name="audit_export") as cur:  # server-side: constant memory for any size
        cur.execute(EXPORT_SQL, (since,))
        for row in cur:
            yield dict(row) if isinstance(row, dict) else dict(zip(COLUMNS, row, strict=True))


def export(rows: Iterator[dict[str, Any]], out: TextIO, fmt: str) -> int:
    if fmt not in ("csv", "jsonl"):
        raise ToolInputError("invalid_argument", f"--format {fmt!r}: csv or jsonl", field="format")
    n = 0
    writer = csv.DictWriter(out, fieldnames=COLUMNS) if fmt == "csv" else None
    if writer:
        writer.writeheader()
    for row in rows:
        n += 1
        if writer:
            writer.writerow(
                {
                    **row,
                    "at": row["at"].isoformat(),
                    "reasons": ";".join(row["reasons"]),
                    "arguments": json.dumps(row["arguments"], sort_keys=True),
                }
            )
        else:
            out.write(json.dumps({**row, "at": row["at"].isoformat()}, default=str) + "\n")
    return n
