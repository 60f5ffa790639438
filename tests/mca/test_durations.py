"""One duration grammar (mca/durations.py) for trigger files, --since periods and the audit export."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mca.durations import parse_duration, parse_since
from mcp_tools.audit import parse_since as audit_since
from mcp_tools.errors import ToolInputError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("250ms", timedelta(milliseconds=250)), ("90s", timedelta(seconds=90)), ("5m", timedelta(minutes=5)),
     ("1.5h", timedelta(minutes=90)), ("30d", timedelta(days=30)), (" 2w ", timedelta(weeks=2)),
     (45, timedelta(seconds=45)), (0.5, timedelta(milliseconds=500))],
)  # fmt: skip
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "5", "5y", "-5m", "m", True, -1, None, "5 minutes"])
def test_what_is_not_a_duration_is_refused_by_name(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_a_period_is_a_duration_longer_than_zero() -> None:
    assert parse_since("12h") == timedelta(hours=12) and parse_since("2w") == timedelta(weeks=2)
    for bad in ("0d", "soon", "0"):
        with pytest.raises(ValueError, match="not a period"):
            parse_since(bad)


def test_the_audit_export_reads_a_span_back_from_now_or_a_date() -> None:
    now = datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert audit_since("24h", now) == now - timedelta(hours=24)
    assert audit_since("2026-05-01", now) == datetime(2026, 5, 1, tzinfo=UTC)
    with pytest.raises(ToolInputError, match="--since 'later'"):
        audit_since("later", now)
