"""Rows into PostgreSQL's ``events`` in one statement (the direct transport and the sink worker).

A batch travels as one parameter: a JSON array of arrays in ``COLUMNS`` order, written by
orjson and unpacked by ``jsonb_array_elements``. That is the cheapest path in CPU per row
(client plus backend): orjson writes a row faster than psycopg's COPY ``write_row`` (binary or
text), PostgreSQL unpacks positional arrays faster than ``jsonb_to_recordset`` objects, and a
COPY into a staging table followed by ``INSERT … SELECT`` costs the backend more than this
single statement (bench/bench_ingest.py). Events
are expected to be new: a plain INSERT first, and only when it meets a redelivery the
``ON CONFLICT DO NOTHING`` statement, which answers with a count, not every id (the ids are
looked up again only when some were already stored).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import orjson
import psycopg

from ingest.errors import FieldError, ValidationFailed
from ingest.formats import COLUMNS, Row

_INSERT = """
INSERT INTO events (event_id, user_id, event_type, ts, received_at, source,
                    value, points, sku, category, text, properties)
SELECT e->>0, e->>1, e->>2, CAST(e->>3 AS timestamptz),
       COALESCE(CAST(e->>4 AS timestamptz), now()), COALESCE(e->>5, 'api'),
       CAST(e->>6 AS numeric), CAST(e->>7 AS integer), e->>8, e->>9, e->>10,
       COALESCE(NULLIF(e->11, 'null'::jsonb), '{}'::jsonb)
FROM jsonb_array_elements(CAST(%s AS jsonb)) AS e
"""
# The common case, every event new: a plain INSERT (ON CONFLICT's speculative insertion costs
# the backend ~2.7 µs a row, a fifth of the insert). A unique violation means a redelivery.
INSERT_NEW_EVENTS = _INSERT
STORE_EVENTS = f"""
WITH stored AS ({_INSERT} ON CONFLICT (event_id) DO NOTHING RETURNING 1)
SELECT count(*) AS stored FROM stored
"""
# Rows this transaction inserted carry its xid (the column's default); any other row with one
# of these ids was there before: a duplicate.
ALREADY_STORED = """
SELECT event_id FROM events
WHERE event_id = ANY(%s) AND xid <> pg_current_xact_id()
"""
_VALUES = operator.itemgetter(*COLUMNS)
# SQLSTATE classes that mean the request's own data cannot be stored (data exception,
# integrity constraint, program limit such as nesting too deep): the client's fault, 422.
CLIENT_DATA_CLASSES = frozenset({"22", "23", "54"})
# Classes worth a retry: connection, transaction rollback, resources, operator intervention.
TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})


def encode_rows(rows: Sequence[Row]) -> str:
    """The rows as the statement's parameter, or ValidationFailed naming the first row that
    cannot be written as JSON (too deeply nested, an integer beyond 64 bits, …)."""
    try:
        return orjson.dumps([_VALUES(row) for row in rows]).decode()
    except (orjson.JSONEncodeError, KeyError):
        pass
    for index, row in enumerate(rows):
        try:
            orjson.dumps(_VALUES(row))
        except KeyError as err:
            raise ValidationFailed([FieldError(f"events[{index}]", f"missing column {err}")]) from None
        except orjson.JSONEncodeError as err:
            reason = f"cannot be stored ({err})"
            raise ValidationFailed([FieldError(f"events[{index}]", reason)]) from None
    raise AssertionError("the batch failed to encode but no row did")


def join_encoded(parts: Sequence[str]) -> str:
    """Several ``encode_rows`` results as one array, without encoding anything again."""
    inner = [part[1:-1] for part in parts if len(part) > 2]
    return "[" + ",".join(inner) + "]"


def is_client_data_error(err: psycopg.Error) -> bool:
    return (err.sqlstate or "")[:2] in CLIENT_DATA_CLASSES


def is_transient(err: psycopg.Error) -> bool:
    return isinstance(err, psycopg.OperationalError) or (err.sqlstate or "")[:2] in TRANSIENT_CLASSES


def store_rejected(err: psycopg.Error) -> ValidationFailed:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return ValidationFailed([FieldError("body", f"the state store rejected these events: {reason}")])


async def insert_new(conn: psycopg.AsyncConnection[Any], payload: str) -> None:
    """Insert encoded rows that are all expected to be new; UniqueViolation if one is not."""
    await conn.execute(INSERT_NEW_EVENTS, (payload,))


async def store(conn: psycopg.AsyncConnection[Any], payload: str, ids: Sequence[str]) -> set[str]:
    """Insert the encoded rows inside the caller's transaction; the ids that were already
    stored before it (redeliveries). Repeats within ``ids`` are the caller's to count."""
    cur = await conn.execute(STORE_EVENTS, (payload,))
    row: Any = await cur.fetchone()
    distinct = set(ids)
    if row is not None and int(row["stored"]) == len(distinct):
        return set()
    cur = await conn.execute(ALREADY_STORED, (list(distinct),))
    return {r["event_id"] for r in await cur.fetchall()}
