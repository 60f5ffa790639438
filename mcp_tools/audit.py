"""`mca audit export`: every guard verdict since a time, as CSV or JSON lines, streamed."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

import psycopg

from mca.durations import match_duration
from mcp_tools.errors import ToolInputError

# A held call's operator decision lives on its pending_actions row (decided_by, set by `mca
# approve/reject --by`); every verdict of that call carries it, so a reader of the hold row
# sees who released or refused it.
EXPORT_SQL = """
SELECT a.audit_id, a.at, a.caller, a.trigger_name, a.decision_id, a.tool, a.user_id, a.verdict, a.reasons,
       a.message, a.call_id, a.policy_version, a.arguments,
       CASE WHEN h.status = 'done' THEN h.decided_by END AS approved_by,
       CASE WHEN h.status = 'rejected' THEN h.decided_by END AS rejected_by
FROM audit_log a
LEFT JOIN LATERAL (
    SELECT p.status, p.decided_by FROM pending_actions p
    WHERE p.call_id = a.call_id AND p.kind = 'hold' AND p.status <> 'waiting'
    ORDER BY p.pending_id DESC LIMIT 1
) h ON true
WHERE a.at >= %s ORDER BY a.audit_id
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
    "approved_by",
    "rejected_by",
]
# A spreadsheet runs a cell starting with one of these as a formula (OWASP "CSV Injection"):
# such cells get a leading single quote, which the spreadsheet shows as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def parse_since(text: str, now: datetime | None = None) -> datetime:
    """An ISO date or datetime (UTC when no zone is given) or a span back from now: 30m, 24h, 7d, 2w."""
    now = now or datetime.now(UTC)
    span = match_duration(text)
    if span is not None:
        return now - span
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


def neutralise_cell(value: Any) -> Any:
    """A text cell a spreadsheet would evaluate, made inert; anything else unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_row(row: dict[str, Any]) -> dict[str, Any]:
    flat = {
        **row,
        "at": row["at"].isoformat(),
        "reasons": ";".join(row["reasons"]),
        "arguments": json.dumps(row["arguments"], sort_keys=True),
    }
    return {name: neutralise_cell(value) for name, value in flat.items()}


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
            writer.writerow(csv_row(row))
        else:
            out.write(json.dumps({**row, "at": row["at"].isoformat()}, default=str) + "\n")
    return n
